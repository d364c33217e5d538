"""Which members belong on which page, and the hypermedia controls between pages.

This layer builds JSON-LD documents as plain dicts; it never sees a request and does no
RDF-library work. :mod:`ldf_server.rdf` turns the dicts into bytes.
"""
