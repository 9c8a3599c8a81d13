"""Edges that turn outside data into Protocol V2 frames (and recordings back into frames).

``evm/``: the live EVM DEX adapter (web3 WebSocket); ``recorder``/``replayer``:
journal files of PROTOCOL.md section 6.
"""
