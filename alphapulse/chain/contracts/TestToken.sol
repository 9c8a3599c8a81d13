// SPDX-License-Identifier: MIT
// Test ERC-20 for the local chain: configurable decimals and an open mint, so tests can
// create tokens with 6, 8 and 18 decimals and fund any account. Never deploy outside tests.
pragma solidity 0.8.28;

contract TestToken {
    string public name;
    string public symbol;
    uint8 private immutable _decimals;
    uint256 public totalSupply;
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    constructor(string memory name_, string memory symbol_, uint8 decimals_) {
        name = name_;
        symbol = symbol_;
        _decimals = decimals_;
    }

    function decimals() public view virtual returns (uint8) {
        return _decimals;
    }

    function mint(address to, uint256 amount) external {
        totalSupply += amount;
        balanceOf[to] += amount;
        emit Transfer(address(0), to, amount);
    }

    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount;
        emit Approval(msg.sender, spender, amount);
        return true;
    }

    function transfer(address to, uint256 amount) external returns (bool) {
        _transfer(msg.sender, to, amount);
        return true;
    }

    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        uint256 allowed = allowance[from][msg.sender];
        if (allowed != type(uint256).max) {
            require(allowed >= amount, "TestToken: allowance");
            allowance[from][msg.sender] = allowed - amount;
        }
        _transfer(from, to, amount);
        return true;
    }

    function _transfer(address from, address to, uint256 amount) internal {
        require(balanceOf[from] >= amount, "TestToken: balance");
        balanceOf[from] -= amount;
        balanceOf[to] += amount;
        emit Transfer(from, to, amount);
    }
}

// A token that does not answer like an ERC-20: decimals() reverts. Lets the ingestion tests
// prove that a pool with such a token is blacklisted with a reason instead of crashing.
contract RevertingDecimalsToken is TestToken {
    constructor(string memory name_, string memory symbol_) TestToken(name_, symbol_, 18) {}

    function decimals() public pure override returns (uint8) {
        revert("RevertingDecimalsToken: decimals");
    }
}
