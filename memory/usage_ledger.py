"""What the model was asked and what it cost: the usage ledger and token calibration.

`UsageLedger` owns the `usage` and `calibration` tables (their migrations are the core
set's, memory/migrations.py). Every model request leaves one usage row (tokens sent,
cached and produced, whether the provider reported them or they were estimated, first
token and total latency, the outcome), which `/usage`, the daily budget and `/stats` add
up. Calibration keeps, per model, the ratio of the provider's prompt token count to ours,
so window budgets follow the real tokenizer.
"""

from __future__ import annotations

from memory.sql_table import Table


class UsageLedger(Table):
    """The usage and calibration tables; callers never write their SQL."""

    def record_usage(self, *, conversation_id: int | None, user_id: int | None, model: str,
                     outcome: str, prompt_tokens: int = 0, cached_tokens: int = 0,
                     completion_tokens: int = 0, estimated_prompt_tokens: int = 0,
                     first_token_ms: int | None = None, latency_ms: int = 0,
                     message_id: int | None = None, usage_estimated: bool = False) -> None:
        with self.db.atomic():
            self.db.execute(
                "INSERT INTO usage (conversation_id, user_id, message_id, model, prompt_tokens, cached_tokens, "
                "completion_tokens, estimated_prompt_tokens, first_token_ms, latency_ms, outcome, created_at, "
                "usage_estimated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [conversation_id, user_id, message_id, model, prompt_tokens, cached_tokens,
                 completion_tokens, estimated_prompt_tokens, first_token_ms, latency_ms, outcome, self.now(),
                 int(usage_estimated)],
            )

    def usage_totals(self, *, user_id: int | None = None, since: str | None = None) -> dict[str, int]:
        clauses, params = [], []
        if user_id is not None:
            clauses.append("user_id = ?")
            params.append(user_id)
        if since is not None:
            clauses.append("created_at >= ?")
            params.append(since)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        row = self._one(
            "SELECT count(*), coalesce(sum(prompt_tokens), 0), coalesce(sum(cached_tokens), 0), "
            f"coalesce(sum(completion_tokens), 0) FROM usage {where}", params)
        return {"requests": row[0], "prompt_tokens": row[1], "cached_tokens": row[2],
                "completion_tokens": row[3]}

    def calibration_ratios(self) -> dict[str, float]:
        return {model: ratio for model, ratio in self._rows("SELECT model, ratio FROM calibration")}

    def save_calibration(self, model: str, ratio: float) -> None:
        with self.db.atomic():
            self.db.execute(
                "INSERT INTO calibration (model, ratio, samples, updated_at) VALUES (?, ?, 1, ?) "
                "ON CONFLICT (model) DO UPDATE SET ratio = excluded.ratio, samples = calibration.samples + 1, "
                "updated_at = excluded.updated_at",
                [model, ratio, self.now()],
            )

    def forget_user(self, user_id: int) -> None:
        """Erase the user's usage rows (run before their conversations go)."""
        self.db.execute("DELETE FROM usage WHERE user_id = ? OR conversation_id IN "
                        "(SELECT id FROM conversations WHERE user_id = ?)", [user_id, user_id])
