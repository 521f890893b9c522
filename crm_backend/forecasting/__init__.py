"""Sales forecasting: weighted pipeline, historical time series, AI (win × close-date models) and
manual figures, by period and by owner, team or territory, with intervals, actuals and backtests.

`service.forecast` is the entry point; `backtest.run` replays past periods to say which method has
been most accurate.
"""
