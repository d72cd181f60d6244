"""schemathesis hooks for scripts/api-fuzz.sh: send generated text as the
body of operations that take a file (POST /bulk-invites takes text/csv)."""
import schemathesis


@schemathesis.serializer("text/csv")
class CsvSerializer:
    def as_requests(self, context, value):
        return {"data": value if isinstance(value, (str, bytes)) else str(value)}

    def as_werkzeug(self, context, value):
        return {"data": value if isinstance(value, (str, bytes)) else str(value)}
