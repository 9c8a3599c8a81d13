"""The execution domain: every signal re-executed by real contract code on the newest state
(checker), and, in ``send`` mode, sent as a transaction with an on-chain profit guard (sender).

``cycle``: a signal as ArbExecutor calldata; ``rpc``: a small keep-alive JSON-RPC client with
timeouts; ``checker``: the check methods (eth_call with a state override, in-process EVM) and the
classification into ExecutionReport records; ``component``: the pipeline loop between the signal
and execution rings; ``sender``: signing, sending and tracking transactions.
"""
