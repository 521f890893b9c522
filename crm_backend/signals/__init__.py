"""Sales signals (stalled, slipped, hot, unhappy, at-risk records), customer health and churn risk,
and account segmentation. See docs/engines/signals.md."""
