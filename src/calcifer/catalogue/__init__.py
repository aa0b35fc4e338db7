"""The price catalogue (genai-prices) and the compact snapshot of it the gateway keeps."""
