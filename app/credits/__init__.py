"""Credits and token metering: prices, margins, balances, ledgers, summaries, BYOK keys."""
