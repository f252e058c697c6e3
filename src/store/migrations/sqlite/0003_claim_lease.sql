-- A claim's lease (Unix ms): past it, another appliance may settle a `dialing` lead; for a
-- `dial_unknown` lead, when a call Twilio still does not list may be taken as never placed.
ALTER TABLE leads ADD COLUMN claim_expires_at_ms BIGINT;
CREATE INDEX leads_claims ON leads (state, claim_expires_at_ms);
