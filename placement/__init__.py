"""The placement optimizer: which request gets which device (pure: numpy and OR-tools, no I/O).

The allocate fast path uses ``greedy`` and ``model`` (one request, vectorized best fit).
Batches, queue drains and users' batches use ``solve.solve(problem, params)``: problems in
``problem``, parameters and plans in ``plan``, strategy scores in ``strategies``, the objective
in ``objective``, and the solvers (``greedy_batch``, ``assignment``, ``flow``, ``cpsat``,
``windows``) over ``compiled`` arrays; ``explain`` says why. Importing the package imports
nothing else, so the fast path does not load OR-tools.
"""
