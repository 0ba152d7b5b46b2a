"""Jobs run through ``ray job submit`` (or straight from a shell): each module here is
``python -m scheduler.jobs.<name> …``. A job reads the same settings as the services
(``PHONEFLEET_DATABASE_URL``, …: ``phonefleet up`` gives them to its Ray head), writes its
record (``GET /scheduler/jobs/{id}``) as it goes, and shows a progress bar (``tqdm_ray`` under
Ray, so the dashboard's job page shows it)."""
