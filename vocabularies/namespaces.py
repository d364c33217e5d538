"""Namespace IRIs and the few full IRIs the server needs outside the JSON-LD context."""

RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"
XSD = "http://www.w3.org/2001/XMLSchema#"
DCT = "http://purl.org/dc/terms/"
DCAT = "http://www.w3.org/ns/dcat#"
FOAF = "http://xmlns.com/foaf/0.1/"
PROV = "http://www.w3.org/ns/prov#"
DATEX = "http://vocab.datex.org/terms#"
GEO = "http://www.w3.org/2003/01/geo/wgs84_pos#"
TREE = "https://w3id.org/tree#"
LDES = "https://w3id.org/ldes#"
HYDRA = "http://www.w3.org/ns/hydra/core#"
SH = "http://www.w3.org/ns/shacl#"
SOSA = "http://www.w3.org/ns/sosa/"

LDFS = "https://w3id.org/ldf-server/ns#"  # this project's own terms (vocabularies/ldf-server.ttl)
TIME = "http://www.w3.org/2006/time#"
LOCN = "http://www.w3.org/ns/locn#"
WA = "http://semweb.mmlab.be/ns/wa#"
GEBOUW = "https://data.vlaanderen.be/ns/gebouw#"
BUILDING_REGISTRY = "https://data.vlaanderen.be/id/gebouw/"
ADDRESS_REGISTRY = "https://data.vlaanderen.be/id/adres/"

# The two machine-readable open licences the Smart Flanders programme accepts.
LICENCE_CC0 = "http://data.vlaanderen.be/id/licentie/creative-commons-zero-verklaring/v1.0"
LICENCE_FREE_REUSE = "http://data.vlaanderen.be/id/licentie/modellicentie-gratis-hergebruik/v1.0"
LICENCES = {"cc0": LICENCE_CC0, "modellicentie-gratis-hergebruik": LICENCE_FREE_REUSE}

# Specifications a served interface conforms to (dct:conformsTo).
SPEC_LDES = "https://w3id.org/ldes/specification"
SPEC_TREE = "https://w3id.org/tree/specification"
VOID = "http://rdfs.org/ns/void#"
SPEC_TPF = "http://www.hydra-cg.com/spec/latest/triple-pattern-fragments/"
EU_DATA_THEME = "http://publications.europa.eu/resource/authority/data-theme/"
EU_FREQUENCY = "http://publications.europa.eu/resource/authority/frequency/"
SCHEMA = "http://schema.org/"
SCHEMA_HTTPS = "https://schema.org/"
RDF_TYPE = RDF + "type"
RDFS_LABEL = RDFS + "label"

# Media types as IRIs (dcat:mediaType), as DCAT-AP asks: IANA's registry pages.
IANA_MEDIA_TYPES = "https://www.iana.org/assignments/media-types/"
MEDIA_JSONLD = IANA_MEDIA_TYPES + "application/ld+json"
MEDIA_EVENT_STREAM = IANA_MEDIA_TYPES + "text/event-stream"
MEDIA_NQUADS = IANA_MEDIA_TYPES + "application/n-quads"
MEDIA_GZIP = IANA_MEDIA_TYPES + "application/gzip"  # dcat:compressFormat of the day dumps

# Ghent's own IRIs for its garages ("P7" → https://stad.gent/id/parking/P7).
GHENT_PARKING = "https://stad.gent/id/parking/"
