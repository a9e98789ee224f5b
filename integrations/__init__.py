"""Label Studio and FiftyOne integrations: prompts in as video jobs, masklets out as labels."""
