"""The REST/JSON gateway: the gRPC API's services over HTTP (Starlette, uvicorn), on the
server's own event loop."""

from caxton.shell.rest.app import rest_app
from caxton.shell.rest.calls import Services
from caxton.shell.rest.gateway import RestGateway
from caxton.shell.rest.routes import NOT_EXPOSED, OPERATIONS

__all__ = ["NOT_EXPOSED", "OPERATIONS", "RestGateway", "Services", "rest_app"]
