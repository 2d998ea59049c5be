"""The gateway's routes, one ``APIRouter`` per resource: queries, models, admin, health, OpenAI-compatible chat."""
