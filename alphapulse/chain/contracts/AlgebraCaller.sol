// SPDX-License-Identifier: MIT
// Test helper for Algebra v1.0 pools (QuickSwap V3): adds liquidity and swaps by calling the pool
// directly, paying from the caller's approved balance in algebraMintCallback /
// algebraSwapCallback (Algebra's callback names). swap returns what AlgebraPool.swap returns, so
// tests compare the pool's own amounts. Never deploy outside tests.
pragma solidity 0.8.28;

interface IERC20Pay {
    function transferFrom(address from, address to, uint256 amount) external returns (bool);
}

interface IAlgebraPoolMin {
    function token0() external view returns (address);
    function token1() external view returns (address);
    function mint(address sender, address recipient, int24 bottomTick, int24 topTick, uint128 liquidityDesired,
                  bytes calldata data) external returns (uint256 amount0, uint256 amount1, uint128 liquidityActual);
    function swap(address recipient, bool zeroToOne, int256 amountRequired, uint160 limitSqrtPrice, bytes calldata data)
        external returns (int256 amount0, int256 amount1);
}

contract AlgebraCaller {
    address private _activePool;
    address private _payer;

    event Swapped(address indexed pool, int256 amount0, int256 amount1);

    /// Adds liquidity to [bottomTick, topTick] for this contract, paid by the caller.
    function mint(address pool, int24 bottomTick, int24 topTick, uint128 liquidity)
        external returns (uint256 amount0, uint256 amount1)
    {
        _begin(pool);
        (amount0, amount1, ) = IAlgebraPoolMin(pool).mint(address(this), address(this), bottomTick, topTick, liquidity, "");
        _end();
    }

    /// One swap: amountRequired > 0 is an exact input, < 0 an exact output; the caller pays the
    /// input and receives the output. Returns the pool's (amount0, amount1).
    function swap(address pool, bool zeroToOne, int256 amountRequired, uint160 limitSqrtPrice)
        external returns (int256 amount0, int256 amount1)
    {
        _begin(pool);
        (amount0, amount1) = IAlgebraPoolMin(pool).swap(msg.sender, zeroToOne, amountRequired, limitSqrtPrice, "");
        _end();
        emit Swapped(pool, amount0, amount1);
    }

    function algebraMintCallback(uint256 amount0Owed, uint256 amount1Owed, bytes calldata) external {
        require(msg.sender == _activePool, "AlgebraCaller: not the pool");
        if (amount0Owed > 0) _pay(IAlgebraPoolMin(msg.sender).token0(), amount0Owed);
        if (amount1Owed > 0) _pay(IAlgebraPoolMin(msg.sender).token1(), amount1Owed);
    }

    function algebraSwapCallback(int256 amount0Delta, int256 amount1Delta, bytes calldata) external {
        require(msg.sender == _activePool, "AlgebraCaller: not the pool");
        if (amount0Delta > 0) _pay(IAlgebraPoolMin(msg.sender).token0(), uint256(amount0Delta));
        if (amount1Delta > 0) _pay(IAlgebraPoolMin(msg.sender).token1(), uint256(amount1Delta));
    }

    function _begin(address pool) private {
        require(_activePool == address(0), "AlgebraCaller: reentered");
        _activePool = pool;
        _payer = msg.sender;
    }

    function _end() private {
        _activePool = address(0);
        _payer = address(0);
    }

    function _pay(address token, uint256 amount) private {
        require(IERC20Pay(token).transferFrom(_payer, msg.sender, amount), "AlgebraCaller: pay");
    }
}
