"""The browser page: a form that encrypts in the browser, and the static files it loads.

This package holds no cryptography of its own: the page's JavaScript encrypts
and decrypts in the visitor's tab, and the service only ever sees ciphertexts.
Here are the parts the service mounts: the page's HTML, its assets served
from the package with strict security headers, and an API reference built
from the OpenAPI document, so nothing a visitor loads comes from another
origin. page_hashes() gives what pins the page: the SHA-256 of its HTML and
the integrity of every asset, fixed for an installed version.
"""

from ppml.web.docs import api_reference_html
from ppml.web.page import (
    CONTENT_SECURITY_POLICY,
    SECURITY_HEADERS,
    PageAssets,
    PageHashes,
    SecurityHeaders,
    page_hashes,
    page_html,
    sri,
)

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "SECURITY_HEADERS",
    "PageAssets",
    "PageHashes",
    "SecurityHeaders",
    "api_reference_html",
    "page_hashes",
    "page_html",
    "sri",
]
