"""Shared fixtures. Kept lazy: a test that needs no chain imports nothing from web3 or anvil.

Chain fixtures (see alphapulse/chain/): ``anvil`` is one node per test session on a free
127.0.0.1 port; ``market`` is the default deployed market on it, reverted to its post-deploy
state (evm_snapshot/evm_revert) after every test so chains stay short and tests independent;
``anvil_factory`` starts extra nodes (e.g. to restart or kill them) and stops them after the test.
A missing anvil install fails these fixtures with the install command (CI must not skip).
"""
import pytest


def _start_node(**kwargs):
    from alphapulse.chain.anvil import Anvil, AnvilNotFound
    try:
        node = Anvil(**kwargs)
    except AnvilNotFound as exc:
        pytest.fail(str(exc), pytrace=False)
    return node.start()


def _node_fixtures(scope: str):
    """``anvil`` (a node on a free 127.0.0.1 port) and ``_deployed_market`` (the default market
    deployed on it) fixtures of the given scope."""
    @pytest.fixture(scope=scope)
    def anvil():
        node = _start_node()
        yield node
        node.stop()

    @pytest.fixture(scope=scope)
    def _deployed_market(anvil):
        from alphapulse.chain.deploy import deploy_market
        return deploy_market(anvil.http_url)

    return anvil, _deployed_market


anvil, _deployed_market = _node_fixtures("session")


def own_node_fixtures():
    """``anvil`` and ``_deployed_market`` fixtures for a module that needs a node of its own:
    a test that reads state at past blocks, or whose transactions depend on the chain's history,
    cannot share the session node, whose snapshot reverts (one per test of the whole suite) drop
    past blocks' state (``BlockOutOfRangeError``). Use: ``anvil, _deployed_market =
    own_node_fixtures()`` at module level; ``market`` then forks that node's deployment."""
    return _node_fixtures("module")


@pytest.fixture
def market(anvil, _deployed_market):
    snapshot = anvil.snapshot()
    yield _deployed_market.fork()
    anvil.set_automine(True)  # a test may have left it off
    anvil.revert(snapshot)


@pytest.fixture
def anvil_factory():
    nodes = []

    def start(**kwargs):
        node = _start_node(**kwargs)
        nodes.append(node)
        return node

    yield start
    for node in nodes:
        node.stop()
