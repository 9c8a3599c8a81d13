"""Local EVM chain toolkit: a real anvil node with real Uniswap V2/V3 contracts.

Install once: ``npm ci --prefix evm`` (anvil binary + Uniswap artifacts, pinned in evm/package.json).
Submodules are imported explicitly so importing this package costs nothing:

anvil.py      ``Anvil(chain_id=137, port=None, block_time=None, no_mining=False, prune_history=100,
              gas_limit=None, order="fifo", load_state=None, genesis_timestamp=None)`` - start()/stop(),
              context manager, http_url/ws_url/port/pid/running, rpc(method, params), block_number(),
              mine(n), set_automine(b), snapshot()/revert(id), dump_state(path)/load_state(path),
              restart(load_state=None) (same port), kill() (crash), set_block_timestamp_interval(s).
              ``find_anvil_binary()`` raises ``AnvilNotFound`` naming the install command.
              ``DEV_ACCOUNTS`` / ``DEV_PRIVATE_KEYS``: anvil's ten unlocked dev accounts.
artifacts.py  ``load_artifact(name)`` -> Artifact(abi, bytecode) for Uniswap contracts (from
              evm/node_modules) and TestToken / RevertingDecimalsToken / CycleExecutor (committed,
              regenerate with ``node evm/compile.js``); ``function_codec(contract, fn)``.
deploy.py     ``deploy_market(url_or_w3, MarketSpec()) -> Market``; ``connect(url) -> Web3``.
              Market fields: tokens {symbol: Token(symbol, address, decimals, decimals_reverts)},
              pools [Pool(address, kind, venue, factory, token0, token1, fee_pips, tick_spacing, label)],
              v2_factories/v2_routers {venue: address}, v3_factory, v3_venue, v3_position_manager,
              v3_swap_router, v3_quoter, weth9, executor, traders, deployer, chain_id, usd_prices;
              properties factory_venues {factory: venue}, decimals {token: decimals}.
              Lookups: token(sym|addr), pool(obj|addr|label), pools_for(a, b, kind), v2_pool(a, b, venue),
              v3_pool(a, b, fee). Reads: balance, reserves, slot0, price, v3_state (all ticks), pool_state,
              read/read_many (raw eth_call, batched), v2_get_amount_out(_many), quote_v3(_many),
              quote_v3_exact_output.
              Writes: v2_swap / v3_swap / swap -> SwapResult, swap_tx (unsent), fund, move_price,
              add/remove_liquidity_v2/v3, add_token (reverting_decimals=True for a bad token),
              create_v2_pool, create_v3_pool, execute_cycle(path, amount_in, mode="atomic"|"sequential")
              -> CycleResult. to_dict()/Market.from_dict(url, d) hand a market to another process.
simulator.py  ``MarketSimulator(market, SimulatorConfig(seed, txs_per_block, block_interval_s, ...))``:
              run(steps | duration_s) / step() / stop(); seeded swaps, price shocks, arbitrage
              closes and liquidity moves, many txs per block. ``price_gaps(market)``.
__main__.py   ``python -m alphapulse.chain [--seed --block-interval --blocks --duration --market-json]``:
              anvil + market + simulator until stopped; prints {http_url, ws_url, chain_id, market}.
txs.py        ``TxSender``: complete txs without web3 default filling, receipts polled every 5 ms,
              ``batch(txs)`` = automine off + evm_mine, chunked by declared gas.

Test fixtures (tests/conftest.py): ``anvil`` (session node), ``market`` (deployed once, reverted
after every test), ``anvil_factory(**Anvil kwargs)`` (extra nodes, stopped after the test).
"""
