"""Provider adapters: each translates between OpenAI's chat shape and one vendor's wire format."""
