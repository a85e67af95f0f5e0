import numpy as np

from shared_core import Router


def test_fitted_router_routes_and_round_trips(fitted_router: Router, router_file, routerbench_test):
    loaded = Router.load(router_file)
    x = fitted_router.embed(routerbench_test.queries[:50])
    assert np.array_equal(fitted_router.route_batch(x, 0.7), loaded.route_batch(x, 0.7))
    assert loaded.model_specs["claude-v1"] == "anthropic:claude-sonnet-4-5"
