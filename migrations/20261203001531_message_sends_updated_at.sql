-- A send is often made by a provider event first and completed later (the API or an import
-- names its campaign, recipient and when it left). The incremental rollups and attribution
-- look for sends changed since their watermark; created_at misses such a completion, so the
-- send's new day was never recomputed and its landings and clicks never re-attributed.
-- updated_at moves whenever a send's row is changed (set by the statements that change it).
ALTER TABLE message_sends ADD COLUMN updated_at timestamptz;
UPDATE message_sends SET updated_at = created_at;
ALTER TABLE message_sends ALTER COLUMN updated_at SET DEFAULT now(),
                          ALTER COLUMN updated_at SET NOT NULL;
CREATE INDEX message_sends_by_update ON message_sends (company_id, updated_at);
