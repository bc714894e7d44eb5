-- Deliveries are hash-partitioned by webhook: retries of one webhook stay in one partition.
CREATE TABLE IF NOT EXISTS app.webhook_deliveries (
    id            bigint GENERATED ALWAYS AS IDENTITY,
    webhook_id    bigint NOT NULL,
    attempted_at  timestamptz NOT NULL DEFAULT now(),
    status_code   smallint CHECK (status_code BETWEEN 100 AND 599),
    response      text,
    PRIMARY KEY (webhook_id, id)
) PARTITION BY HASH (webhook_id);
