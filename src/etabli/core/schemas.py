"""Small schemas shared by several routers, and helpers to hide what a role may not see."""


from ninja import Schema


class WorkshopRef(Schema):
    id: int
    code: str
    name: str


class ClientRef(Schema):
    id: int
    code: str
    name: str


class Message(Schema):
    message: str


def request_user(context):
    request = context.get("request") if context else None
    return getattr(request, "auth", None) or getattr(request, "user", None)
