"""Cross-origin resource sharing, configured by the ``[cors]`` section."""

from __future__ import annotations

from twisted_compute.api.middleware import Middleware, render_child


class CORS(Middleware):
    def _allowed(self, origin: str) -> bool:
        allowed = self.conf.cors.allowed_origin
        return "*" in allowed or origin in allowed

    def render(self, request):
        origin = request.getHeader(b"origin")
        if not origin or not self._allowed(origin.decode("latin-1")):
            return render_child(self.wrapped, request)
        cors = self.conf.cors
        request.setHeader(b"access-control-allow-origin", origin)
        request.setHeader(b"vary", b"Origin")
        if cors.allow_credentials:
            request.setHeader(b"access-control-allow-credentials", b"true")
        wanted = request.getHeader(b"access-control-request-method")
        if request.method == b"OPTIONS" and wanted:
            if wanted.decode("latin-1").upper() not in cors.allow_methods:
                request.setResponseCode(200)
                return b""
            request.setHeader(b"access-control-allow-methods",
                              ", ".join(cors.allow_methods).encode())
            request.setHeader(b"access-control-allow-headers",
                              ", ".join(cors.allow_headers).encode())
            request.setHeader(b"access-control-max-age",
                              str(cors.max_age).encode())
            request.setResponseCode(200)
            return b""
        request.setHeader(b"access-control-expose-headers",
                          ", ".join(cors.expose_headers).encode())
        return render_child(self.wrapped, request)
