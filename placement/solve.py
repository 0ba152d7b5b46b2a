"""``solve(problem, params) -> PlacementPlan``: the placement optimizer's entry point.

1. Compile the problem to arrays and build the greedy plan (always; it is the floor). If that
   used up the time limit, it is the answer.
2. Improve it with the solver that fits:

   * no anti-affinity, separable strategy (binpack), and each request's R best devices make
     at most ``LSA_MAX_PAIRS`` pairs: the linear sum assignment over those pairs, exact
     (``placement.assignment``);
   * no anti-affinity otherwise (spread, balanced, least_loaded, or bigger batches): the
     min-cost flow over device types, exact for every strategy (``placement.flow``);
   * anti-affinity (users' batches): the flow without anti-affinity first; if its plan keeps
     anti-affinity anyway it is optimal, else it is the global bound, and its plan with the
     conflicts removed (refilled greedily) is the start when it beats greedy. Then CP-SAT,
     warm-started with that start and stopped at the time limit or at the bound: one model
     over diversified (request, device type) candidates up to ``window_requests`` requests
     (then, if time is left and the plan is short of the bound, one over every pair hinted
     with it, to prove or tighten the bound), else windows of that many requests
     (``placement.windows``).
3. Fill: requests the solver left out go greedily to devices still free (this only adds).
   The solvers stop ``FINISH_SECONDS_PER_REQUEST`` × R before the time limit to leave room
   for this and the explanations.
4. Keep the better of that and the greedy plan, so the answer is never worse than greedy;
   a solver that fails or times out without a solution leaves the greedy plan.
5. Explain every placement and every unplaced request.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from placement.arrays import IndexArray, IntArray
from placement.assignment import solve_assignment
from placement.candidates import (
    Edges,
    all_type_edges,
    diversified_type_edges,
    top_edge_count,
    top_edges,
)
from placement.compiled import CompiledProblem, compile_problem
from placement.cpsat import solve_cpsat
from placement.explain import explain_placements, explain_unplaced
from placement.flow import FlowFailed, anti_affinity_conflicts, solve_flow
from placement.greedy_batch import greedy_assign
from placement.objective import UNPLACED, Evaluation, class_edge_scores, evaluate
from placement.plan import PlacementPlan, SolverKind, SolverParams
from placement.problem import PlacementProblem
from placement.strategies import ScoreModel, score_model
from placement.windows import improve_in_windows

#: Time kept back from the solvers per request, for the fill and the explanations after them.
FINISH_SECONDS_PER_REQUEST = 50e-6
#: The proof phase (CP-SAT over every pair) runs up to this many pairs, with this much time;
#: the model over the candidate pool gets at most this share of the time before it.
PROOF_MAX_PAIRS = 20_000
PROOF_MIN_SECONDS = 0.02
FIRST_MODEL_SHARE = 0.6
#: Largest exact assignment model (LSA takes about 0.2 s at this size on one core; the flow
#: is faster beyond).
LSA_MAX_PAIRS = 250_000


@dataclass(frozen=True, eq=False)
class _Context:
    compiled: CompiledProblem
    model: ScoreModel
    class_scores: tuple[IntArray, ...]
    greedy: IndexArray
    floor: Evaluation
    params: SolverParams
    deadline: float


@dataclass(frozen=True, eq=False)
class _Outcome:
    assignment: IndexArray
    evaluation: Evaluation
    solver: SolverKind
    best_bound: int | None
    bound_is_global: bool
    notes: tuple[str, ...]


def solve(problem: PlacementProblem, params: SolverParams | None = None) -> PlacementPlan:
    """Place as much priority weight as possible, then maximize the strategy's score.

    Args:
        problem: nodes, devices and requests.
        params: time limit, workers, seed, strategy (defaults: ``SolverParams()``).

    Returns:
        The plan, with explanations (unless ``params.explain`` is off). A problem is
        validated when it is built (``InvalidProblem``), so solving raises nothing of its own.
    """
    params = params or SolverParams()
    started = time.perf_counter()
    compiled = compile_problem(problem)
    model = score_model(compiled.fleet, params.strategy, params.weights)
    class_scores = class_edge_scores(compiled, model)
    greedy = greedy_assign(compiled, model, class_scores)
    floor = evaluate(compiled, model, greedy)
    reserve = min(0.25 * params.max_time_seconds, FINISH_SECONDS_PER_REQUEST * len(greedy))
    deadline = started + params.max_time_seconds - reserve
    context = _Context(compiled, model, class_scores, greedy, floor, params, deadline)
    if not any(len(c.feasible) for c in compiled.classes):
        outcome = _Outcome(greedy, floor, SolverKind.GREEDY, floor.objective, True, ())
    elif time.perf_counter() >= context.deadline:
        note = "the time limit ran out with the greedy plan"
        outcome = _Outcome(greedy, floor, SolverKind.GREEDY, None, False, (note,))
    elif compiled.has_anti_affinity:
        outcome = _cp_sat(context)
    elif model.separable and _lsa_keep(compiled) is not None:
        outcome = _assignment(context)
    else:
        outcome = _flow(context)

    assignment = outcome.assignment
    explanations = (
        explain_placements(compiled, model, class_scores, assignment) if params.explain else {}
    )
    ids = compiled.request_ids
    devices = compiled.fleet.device_ids
    return PlacementPlan(
        assignments={ids[r]: devices[d] for r, d in enumerate(assignment.tolist()) if d >= 0},
        unplaced=explain_unplaced(compiled, assignment),
        explanations=explanations,
        objective=outcome.evaluation.objective,
        placed_weight=outcome.evaluation.placed_weight,
        score=outcome.evaluation.score,
        solver=outcome.solver,
        best_bound=outcome.best_bound,
        bound_is_global=outcome.bound_is_global,
        greedy_objective=floor.objective,
        solve_seconds=time.perf_counter() - started,
        notes=outcome.notes,
    )


def _lsa_keep(compiled: CompiledProblem) -> int | None:
    """Devices per request that make the assignment exact, if the model stays small enough."""
    placeable = sum(len(c.members) for c in compiled.classes if len(c.feasible))
    return placeable if top_edge_count(compiled, placeable) <= LSA_MAX_PAIRS else None


def _assignment(context: _Context) -> _Outcome:
    compiled, model = context.compiled, context.model
    keep = _lsa_keep(compiled) or 0
    edges = top_edges(compiled, model, context.class_scores, keep=keep)
    solved = solve_assignment(compiled, model, edges)
    if solved is None:
        note = "the assignment solver reported a possible overflow; greedy plan kept"
        return _Outcome(context.greedy, context.floor, SolverKind.GREEDY, None, False, (note,))
    exact = evaluate(compiled, model, solved).objective
    note = f"exact assignment over {len(edges)} (request, device) pairs"
    return _keep_better(context, solved, SolverKind.ASSIGNMENT, exact, True, [note])


def _flow(context: _Context) -> _Outcome:
    try:
        result = solve_flow(context.compiled, context.model)
    except FlowFailed as error:
        note = f"{error}; greedy plan kept"
        return _Outcome(context.greedy, context.floor, SolverKind.GREEDY, None, False, (note,))
    note = "exact min-cost flow over device types"
    return _keep_better(context, result.assignment, SolverKind.FLOW, result.objective, True, [note])


@dataclass(frozen=True, eq=False)
class _Start:
    """Where CP-SAT starts: a plan, who made it, and the flow's bound."""

    assignment: IndexArray
    kind: SolverKind
    value: int
    bound: int | None


def _cp_sat(context: _Context) -> _Outcome:
    compiled, model, params = context.compiled, context.model, context.params
    start = _start(context)
    if isinstance(start, _Outcome):
        return start
    if start.bound is not None and start.value >= start.bound:
        note = f"the {start.kind.value} plan already meets the bound"
        return _keep_better(context, start.assignment, start.kind, start.bound, True, [note])
    pool = diversified_type_edges(
        compiled, model, start.assignment, params.candidates_per_request, params.random_seed
    )
    if compiled.num_requests <= params.window_requests:
        return _one_model(context, start, pool)
    improved = improve_in_windows(
        compiled,
        model,
        pool,
        start.assignment,
        deadline=context.deadline,
        window_requests=params.window_requests,
        num_workers=params.num_workers,
        random_seed=params.random_seed,
        upper_bound=start.bound,
    )
    if improved.windows == 0:
        note = "no time left for a CP-SAT window"
        return _keep_better(
            context, start.assignment, start.kind, start.bound, start.bound is not None, [note]
        )
    note = (
        f"CP-SAT over {improved.windows} windows of {params.window_requests} requests"
        f" ({improved.improved} improved the plan; {len(pool)} candidate pairs)"
    )
    return _keep_better(
        context,
        improved.assignment,
        SolverKind.CP_SAT,
        start.bound,
        start.bound is not None,
        [note],
    )


def _start(context: _Context) -> _Start | _Outcome:
    """The flow without anti-affinity: its optimum is the bound, and with its conflicts
    removed (and refilled greedily) the start plan when that beats greedy. When the flow's
    plan keeps anti-affinity anyway, it is the answer."""
    compiled, model = context.compiled, context.model
    greedy = _Start(context.greedy, SolverKind.GREEDY, context.floor.objective, None)
    try:
        relaxed = solve_flow(compiled, model)
    except FlowFailed:
        return greedy
    conflicts = anti_affinity_conflicts(compiled, relaxed.assignment)
    if len(conflicts) == 0:
        note = "exact min-cost flow over device types (it kept anti-affinity by itself)"
        return _keep_better(
            context, relaxed.assignment, SolverKind.FLOW, relaxed.objective, True, [note]
        )
    repaired = relaxed.assignment.copy()
    repaired[conflicts] = UNPLACED
    repaired = greedy_assign(compiled, model, context.class_scores, start=repaired)
    value = evaluate(compiled, model, repaired).objective
    if value > greedy.value:
        return _Start(repaired, SolverKind.FLOW, value, relaxed.objective)
    return _Start(greedy.assignment, greedy.kind, greedy.value, relaxed.objective)


def _one_model(context: _Context, start: _Start, pool: Edges) -> _Outcome:
    """One CP-SAT model over ``pool``; then, if time is left and the plan is short of the
    bound, one over every pair, hinted with the plan, to prove it (or find better)."""
    compiled, model, params = context.compiled, context.model, context.params
    bound = start.bound
    pairs = compiled.feasible_type_pair_count()
    provable = not pool.complete and pairs <= PROOF_MAX_PAIRS
    now = time.perf_counter()
    # Leave the proof a share of the time; the pool model usually finishes well before.
    share = FIRST_MODEL_SHARE if provable else 1.0
    result = solve_cpsat(
        compiled,
        model,
        pool,
        start.assignment,
        deadline=now + share * (context.deadline - now),
        num_workers=params.num_workers,
        random_seed=params.random_seed,
        upper_bound=bound,
    )
    notes = [f"CP-SAT {result.status} over {len(pool)} (request, device type) pairs"]
    if result.best_bound is not None and pool.complete:
        bound = result.best_bound if bound is None else min(bound, result.best_bound)
    best, kind = start.assignment, start.kind
    if result.assignment is not None:
        best, kind = result.assignment, SolverKind.CP_SAT
    value = evaluate(compiled, model, best).objective
    if (
        provable
        and (bound is None or value < bound)
        and context.deadline - time.perf_counter() > PROOF_MIN_SECONDS
    ):
        proof = solve_cpsat(
            compiled,
            model,
            all_type_edges(compiled),
            best,
            deadline=context.deadline,
            num_workers=params.num_workers,
            random_seed=params.random_seed,
            upper_bound=bound,
        )
        notes.append(f"then CP-SAT {proof.status} over all {pairs} pairs")
        if proof.best_bound is not None:
            bound = proof.best_bound if bound is None else min(bound, proof.best_bound)
        if (
            proof.assignment is not None
            and evaluate(compiled, model, proof.assignment).objective > value
        ):
            best, kind = proof.assignment, SolverKind.CP_SAT
    return _keep_better(context, best, kind, bound, bound is not None, notes)


def _keep_better(
    context: _Context,
    solved: IndexArray,
    solver: SolverKind,
    bound: int | None,
    bound_is_global: bool,
    notes: list[str],
) -> _Outcome:
    """Fill the solver's plan greedily, then keep it unless the greedy plan is better."""
    compiled, model = context.compiled, context.model
    filled = greedy_assign(compiled, model, context.class_scores, start=solved)
    evaluation = evaluate(compiled, model, filled)
    if evaluation.objective < context.floor.objective:
        notes.append(f"the {solver.value} plan scored below greedy; greedy plan kept")
        return _Outcome(
            context.greedy, context.floor, SolverKind.GREEDY, bound, bound_is_global, tuple(notes)
        )
    return _Outcome(filled, evaluation, solver, bound, bound_is_global, tuple(notes))
