// SPDX-License-Identifier: MIT
// Test helper: executes a cycle of Uniswap V2 pair / V3 pool / Algebra pool (QuickSwap V3: V3's
// swap signature, paid in algebraSwapCallback) swaps by calling the pools directly
// (no router), either atomically in one transaction (execute) or one hop per transaction
// (executeHop, for several transactions mined in the same block). Amounts are exactly what the
// pools pay: V2 output is the UniswapV2Library formula with the hop's fee in pips (3000 = 0.3%),
// V3 output is what UniswapV3Pool.swap returns. Never deploy outside tests: it holds no funds
// between calls only if callers use it as documented.
pragma solidity 0.8.28;

interface IERC20Min {
    function balanceOf(address) external view returns (uint256);
    function transfer(address to, uint256 amount) external returns (bool);
    function transferFrom(address from, address to, uint256 amount) external returns (bool);
}

interface IUniswapV2PairMin {
    function token0() external view returns (address);
    function getReserves() external view returns (uint112, uint112, uint32);
    function swap(uint256 amount0Out, uint256 amount1Out, address to, bytes calldata data) external;
}

interface IUniswapV3PoolMin {
    function token0() external view returns (address);
    function swap(address recipient, bool zeroForOne, int256 amountSpecified, uint160 sqrtPriceLimitX96, bytes calldata data)
        external returns (int256 amount0, int256 amount1);
}

contract CycleExecutor {
    uint8 internal constant KIND_V2 = 1;   // PoolKind.CONSTANT_PRODUCT
    uint8 internal constant KIND_V3 = 2;   // PoolKind.CONCENTRATED
    uint8 internal constant KIND_ALGEBRA = 3;   // PoolKind.CONCENTRATED_DYNAMIC_FEE
    uint160 internal constant MIN_SQRT_RATIO_PLUS_1 = 4295128740;
    uint160 internal constant MAX_SQRT_RATIO_MINUS_1 = 1461446703485210103287273052203988822378723970341;

    struct Hop {
        address pool;
        uint8 kind;
        address tokenIn;
        address tokenOut;
        uint32 feePips;   // V2 only: the pair's fee in pips (1e6 = 100%)
    }

    address private _activePool;

    event CycleExecuted(address indexed sender, uint256 amountIn, uint256 amountOut, uint256[] hopAmounts);

    /// Pulls amountIn of hops[0].tokenIn from the caller, swaps through every hop and sends the
    /// final output to the caller. Returns the output of each hop (last = amount received).
    function execute(Hop[] calldata hops, uint256 amountIn, uint256 minAmountOut) external returns (uint256[] memory amounts) {
        require(hops.length > 0, "CycleExecutor: no hops");
        require(IERC20Min(hops[0].tokenIn).transferFrom(msg.sender, address(this), amountIn), "CycleExecutor: pull");
        amounts = new uint256[](hops.length);
        uint256 amount = amountIn;
        for (uint256 i = 0; i < hops.length; i++) {
            if (i > 0) require(hops[i].tokenIn == hops[i - 1].tokenOut, "CycleExecutor: broken path");
            amount = _swap(hops[i], amount);
            amounts[i] = amount;
        }
        require(amount >= minAmountOut, "CycleExecutor: insufficient output");
        require(IERC20Min(hops[hops.length - 1].tokenOut).transfer(msg.sender, amount), "CycleExecutor: push");
        emit CycleExecuted(msg.sender, amountIn, amount, amounts);
    }

    /// One hop of a cycle executed over several transactions. amountIn > 0: pull it from the caller;
    /// amountIn == 0: spend this contract's whole balance of tokenIn (the previous hop's output).
    /// toSender: send the output to the caller (last hop) or keep it here for the next hop.
    function executeHop(Hop calldata hop, uint256 amountIn, bool toSender) external returns (uint256 amountOut) {
        if (amountIn > 0) {
            require(IERC20Min(hop.tokenIn).transferFrom(msg.sender, address(this), amountIn), "CycleExecutor: pull");
        } else {
            amountIn = IERC20Min(hop.tokenIn).balanceOf(address(this));
        }
        amountOut = _swap(hop, amountIn);
        if (toSender) {
            require(IERC20Min(hop.tokenOut).transfer(msg.sender, amountOut), "CycleExecutor: push");
        }
    }

    function _swap(Hop calldata hop, uint256 amountIn) internal returns (uint256 amountOut) {
        require(amountIn > 0, "CycleExecutor: zero input");
        if (hop.kind == KIND_V2) {
            IUniswapV2PairMin pair = IUniswapV2PairMin(hop.pool);
            (uint112 r0, uint112 r1,) = pair.getReserves();
            bool zeroForOne = pair.token0() == hop.tokenIn;
            (uint256 rIn, uint256 rOut) = zeroForOne ? (uint256(r0), uint256(r1)) : (uint256(r1), uint256(r0));
            require(IERC20Min(hop.tokenIn).transfer(hop.pool, amountIn), "CycleExecutor: pay pair");
            uint256 inWithFee = amountIn * (1_000_000 - hop.feePips);
            amountOut = (inWithFee * rOut) / (rIn * 1_000_000 + inWithFee);
            (uint256 out0, uint256 out1) = zeroForOne ? (uint256(0), amountOut) : (amountOut, uint256(0));
            pair.swap(out0, out1, address(this), new bytes(0));
        } else if (hop.kind == KIND_V3 || hop.kind == KIND_ALGEBRA) {
            IUniswapV3PoolMin pool = IUniswapV3PoolMin(hop.pool);
            bool zeroForOne = pool.token0() == hop.tokenIn;
            require(amountIn <= uint256(type(int256).max), "CycleExecutor: amount");
            _activePool = hop.pool;
            (int256 a0, int256 a1) = pool.swap(
                address(this), zeroForOne, int256(amountIn),
                zeroForOne ? MIN_SQRT_RATIO_PLUS_1 : MAX_SQRT_RATIO_MINUS_1, abi.encode(hop.tokenIn));
            _activePool = address(0);
            (int256 paid, int256 received) = zeroForOne ? (a0, a1) : (a1, a0);
            // A pool that runs out of liquidity fills only part of the input: refuse, so every
            // reported amount is an exact full-input swap.
            require(uint256(paid) == amountIn, "CycleExecutor: partial fill");
            amountOut = uint256(-received);
        } else {
            revert("CycleExecutor: unknown pool kind");
        }
    }

    function uniswapV3SwapCallback(int256 amount0Delta, int256 amount1Delta, bytes calldata data) external {
        _pay(amount0Delta, amount1Delta, data);
    }

    function algebraSwapCallback(int256 amount0Delta, int256 amount1Delta, bytes calldata data) external {
        _pay(amount0Delta, amount1Delta, data);
    }

    function _pay(int256 amount0Delta, int256 amount1Delta, bytes calldata data) internal {
        require(msg.sender == _activePool && msg.sender != address(0), "CycleExecutor: callback");
        address tokenIn = abi.decode(data, (address));
        uint256 owed = uint256(amount0Delta > 0 ? amount0Delta : amount1Delta);
        require(IERC20Min(tokenIn).transfer(msg.sender, owed), "CycleExecutor: pay pool");
    }
}
