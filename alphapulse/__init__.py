"""AlphaPulse: real-time DEX arbitrage detection."""
