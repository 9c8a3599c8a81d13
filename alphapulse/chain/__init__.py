"""Local EVM chain toolkit: anvil launcher (anvil.py), contract artifacts (artifacts.py), market
deployment and driving (deploy.py, txs.py) and a seeded market simulator (simulator.py).

Submodules are imported explicitly (``from alphapulse.chain.anvil import Anvil``) so importing
the package costs nothing.
"""
