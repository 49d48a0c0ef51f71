"""The chat API family: ``POST /v1/chat/completions`` with audio content parts."""
