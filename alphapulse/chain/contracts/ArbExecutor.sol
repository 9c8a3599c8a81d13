// SPDX-License-Identifier: MIT
// Executes one arbitrage cycle of Uniswap V2 pair / V3 pool / Algebra (QuickSwap V3) pool hops as
// a flash swap (an Algebra pool's swap has Uniswap V3's signature and calls back
// algebraSwapCallback with the same arguments): the first pool
// sends its output before it is paid, the other hops run inside its callback, and the first pool
// is paid from the last hop's output. No funds are needed, so the checker runs this code with
// eth_call at an unused address (state override) or in an in-process EVM, and the sender calls a
// deployed copy. The profit stays in the contract; only its owner can withdraw it.
pragma solidity 0.8.28;

interface IArbERC20 {
    function balanceOf(address) external view returns (uint256);
    function transfer(address to, uint256 amount) external returns (bool);
}

interface IArbV2Pair {
    function token0() external view returns (address);
    function getReserves() external view returns (uint112, uint112, uint32);
    function swap(uint256 amount0Out, uint256 amount1Out, address to, bytes calldata data) external;
}

interface IArbV3Pool {
    function token0() external view returns (address);
    function swap(address recipient, bool zeroForOne, int256 amountSpecified, uint160 sqrtPriceLimitX96, bytes calldata data)
        external returns (int256 amount0, int256 amount1);
}

contract ArbExecutor {
    uint8 internal constant KIND_V2 = 1;   // PoolKind.CONSTANT_PRODUCT
    uint8 internal constant KIND_V3 = 2;   // PoolKind.CONCENTRATED
    uint8 internal constant KIND_ALGEBRA = 3;   // PoolKind.CONCENTRATED_DYNAMIC_FEE (Algebra v1.0)
    uint160 internal constant MIN_SQRT_RATIO_PLUS_1 = 4295128740;
    uint160 internal constant MAX_SQRT_RATIO_MINUS_1 = 1461446703485210103287273052203988822378723970341;

    struct Hop {
        address pool;
        uint8 kind;
        address tokenIn;
        address tokenOut;
        uint32 feePips;   // V2 only: the pair's fee in pips (1e6 = 100%)
    }

    /// The cycle returned less than the first pool is owed: it cannot be paid.
    error Shortfall(uint256 amountOut, uint256 amountIn);
    /// The cycle pays the first pool but its profit is not above minProfit.
    error ProfitGuard(uint256 amountOut, uint256 amountIn, uint256 minProfit);
    /// A V3 pool filled only part of a hop's input (ran out of liquidity).
    error PartialFill(address pool, uint256 paid, uint256 amountIn);
    error UnknownKind(uint8 kind);
    error BadCallback(address caller);
    error NotOwner();

    event CycleExecuted(address indexed tokenIn, uint256 amountIn, uint256 amountOut);

    address public immutable owner;
    address private _flashPool;    // the cycle's first pool while its callback may arrive
    address private _activePool;   // the V3 pool of the current middle hop
    uint256 private _amountOut;    // the cycle's output, handed from the callback to execute

    constructor() {
        owner = msg.sender;
    }

    /// Runs the cycle `hops` (hops[i].tokenOut == hops[i+1].tokenIn, the last returns to
    /// hops[0].tokenIn) with amountIn borrowed from the first pool. Reverts unless the output
    /// exceeds amountIn + minProfit; the profit (amountOut - amountIn) stays in this contract.
    function execute(Hop[] calldata hops, uint256 amountIn, uint256 minProfit) public returns (uint256 amountOut) {
        require(hops.length >= 2 && amountIn > 0, "ArbExecutor: cycle");
        Hop calldata first = hops[0];
        _flashPool = first.pool;
        bytes memory data = abi.encode(hops, amountIn);
        if (first.kind == KIND_V2) {
            uint256 out0 = _v2AmountOut(first, amountIn);
            bool zeroForOne = IArbV2Pair(first.pool).token0() == first.tokenIn;
            IArbV2Pair(first.pool).swap(zeroForOne ? 0 : out0, zeroForOne ? out0 : 0, address(this), data);
        } else if (first.kind == KIND_V3 || first.kind == KIND_ALGEBRA) {
            bool zeroForOne = IArbV3Pool(first.pool).token0() == first.tokenIn;
            (int256 a0, int256 a1) = IArbV3Pool(first.pool).swap(
                address(this), zeroForOne, int256(amountIn), zeroForOne ? MIN_SQRT_RATIO_PLUS_1 : MAX_SQRT_RATIO_MINUS_1, data);
            uint256 paid = uint256(zeroForOne ? a0 : a1);
            if (paid != amountIn) revert PartialFill(first.pool, paid, amountIn);
        } else {
            revert UnknownKind(first.kind);
        }
        _flashPool = address(0);
        amountOut = _amountOut;
        _amountOut = 0;
        if (amountOut <= amountIn + minProfit) revert ProfitGuard(amountOut, amountIn, minProfit);
        emit CycleExecuted(first.tokenIn, amountIn, amountOut);
    }

    /// What the checker calls: executes the cycle with no profit floor and returns its output and
    /// the gas the execution used (this frame's gas, without the transaction's intrinsic cost).
    /// A cycle that cannot repay its first pool returns ok = false with its output; any other
    /// failure reverts with the pool's or token's reason.
    function quote(Hop[] calldata hops, uint256 amountIn) external returns (uint256 amountOut, uint256 gasUsed, bool ok) {
        uint256 g = gasleft();
        try this.execute(hops, amountIn, 0) returns (uint256 out) {
            return (out, g - gasleft(), true);
        } catch (bytes memory reason) {
            bytes4 sel = bytes4(reason);
            if (sel != Shortfall.selector && sel != ProfitGuard.selector) {
                assembly { revert(add(reason, 32), mload(reason)) }
            }
            assembly { amountOut := mload(add(reason, 36)) }
            return (amountOut, g - gasleft(), false);
        }
    }

    function withdraw(address token, address to, uint256 amount) external {
        if (msg.sender != owner) revert NotOwner();
        require(IArbERC20(token).transfer(to, amount), "ArbExecutor: transfer");
    }

    function uniswapV2Call(address sender, uint256 amount0, uint256 amount1, bytes calldata data) external {
        if (msg.sender != _flashPool || sender != address(this)) revert BadCallback(msg.sender);
        _flashPool = address(0);
        (Hop[] memory hops, uint256 amountIn) = abi.decode(data, (Hop[], uint256));
        _finishCycle(hops, amountIn, amount0 > 0 ? amount0 : amount1);
    }

    function uniswapV3SwapCallback(int256 amount0Delta, int256 amount1Delta, bytes calldata data) external {
        _swapCallback(amount0Delta, amount1Delta, data);
    }

    function algebraSwapCallback(int256 amount0Delta, int256 amount1Delta, bytes calldata data) external {
        _swapCallback(amount0Delta, amount1Delta, data);
    }

    /// A concentrated-liquidity pool's swap callback: the first pool's (run the cycle) or the
    /// current middle hop's (pay it); any other caller is refused.
    function _swapCallback(int256 amount0Delta, int256 amount1Delta, bytes calldata data) internal {
        if (msg.sender == _flashPool && msg.sender != address(0)) {
            _flashPool = address(0);
            (Hop[] memory hops,) = abi.decode(data, (Hop[], uint256));
            uint256 received = uint256(-(amount0Delta > 0 ? amount1Delta : amount0Delta));
            uint256 owed = uint256(amount0Delta > 0 ? amount0Delta : amount1Delta);
            _finishCycle(hops, owed, received);
        } else if (msg.sender == _activePool && msg.sender != address(0)) {
            address tokenIn = abi.decode(data, (address));
            uint256 owed = uint256(amount0Delta > 0 ? amount0Delta : amount1Delta);
            require(IArbERC20(tokenIn).transfer(msg.sender, owed), "ArbExecutor: pay pool");
        } else {
            revert BadCallback(msg.sender);
        }
    }

    /// Inside the first pool's callback: run hops 1.., then pay the first pool `owed`.
    function _finishCycle(Hop[] memory hops, uint256 owed, uint256 amount) internal {
        for (uint256 i = 1; i < hops.length; i++) {
            amount = _swap(hops[i], amount);
        }
        if (amount < owed) revert Shortfall(amount, owed);
        _amountOut = amount;
        require(IArbERC20(hops[0].tokenIn).transfer(hops[0].pool, owed), "ArbExecutor: repay");
    }

    /// UniswapV2Library.getAmountOut with the pair's fee in pips, on the pair's current reserves.
    function _v2AmountOut(Hop memory hop, uint256 amountIn) internal view returns (uint256) {
        (uint112 r0, uint112 r1,) = IArbV2Pair(hop.pool).getReserves();
        bool zeroForOne = IArbV2Pair(hop.pool).token0() == hop.tokenIn;
        (uint256 rIn, uint256 rOut) = zeroForOne ? (uint256(r0), uint256(r1)) : (uint256(r1), uint256(r0));
        uint256 inWithFee = amountIn * (1_000_000 - hop.feePips);
        return (inWithFee * rOut) / (rIn * 1_000_000 + inWithFee);
    }

    function _swap(Hop memory hop, uint256 amountIn) internal returns (uint256 amountOut) {
        if (hop.kind == KIND_V2) {
            amountOut = _v2AmountOut(hop, amountIn);
            bool zeroForOne = IArbV2Pair(hop.pool).token0() == hop.tokenIn;
            require(IArbERC20(hop.tokenIn).transfer(hop.pool, amountIn), "ArbExecutor: pay pair");
            IArbV2Pair(hop.pool).swap(zeroForOne ? 0 : amountOut, zeroForOne ? amountOut : 0, address(this), new bytes(0));
        } else if (hop.kind == KIND_V3 || hop.kind == KIND_ALGEBRA) {
            bool zeroForOne = IArbV3Pool(hop.pool).token0() == hop.tokenIn;
            _activePool = hop.pool;
            (int256 a0, int256 a1) = IArbV3Pool(hop.pool).swap(
                address(this), zeroForOne, int256(amountIn),
                zeroForOne ? MIN_SQRT_RATIO_PLUS_1 : MAX_SQRT_RATIO_MINUS_1, abi.encode(hop.tokenIn));
            _activePool = address(0);
            (int256 paid, int256 received) = zeroForOne ? (a0, a1) : (a1, a0);
            if (uint256(paid) != amountIn) revert PartialFill(hop.pool, uint256(paid), amountIn);
            amountOut = uint256(-received);
        } else {
            revert UnknownKind(hop.kind);
        }
    }
}
