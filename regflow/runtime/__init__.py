"""Running one step: the compiled machine, the step context, steps, answers, retries, idempotency,
sessions, limits, sweeping, flow migrations."""
