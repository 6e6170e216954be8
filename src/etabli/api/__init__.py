from ninja import NinjaAPI

api = NinjaAPI(title="Établi API", version="1", urls_namespace="api")
