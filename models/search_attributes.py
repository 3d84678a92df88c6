"""Custom Temporal search attributes (DESIGN.md): registered by `sojourn dev`, docker-compose
and the test fixtures, set by workflows. Never put PII in them."""

from temporalio.common import SearchAttributeKey

SOJOURN_KIND = SearchAttributeKey.for_keyword("SojournKind")
JOURNEY_KEY = SearchAttributeKey.for_keyword("JourneyKey")
JOURNEY_VERSION = SearchAttributeKey.for_int("JourneyVersion")
PROFILE_ID = SearchAttributeKey.for_keyword("ProfileId")
CAMPAIGN_KEY = SearchAttributeKey.for_keyword("CampaignKey")
CURRENT_NODE = SearchAttributeKey.for_keyword("CurrentNode")
VISITED_NODES = SearchAttributeKey.for_keyword_list("VisitedNodes")

ALL = [SOJOURN_KIND, JOURNEY_KEY, JOURNEY_VERSION, PROFILE_ID, CAMPAIGN_KEY, CURRENT_NODE, VISITED_NODES]


async def register(client) -> None:
    """Register the attributes on a server that lacks them (e.g. the time-skipping test server)."""
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest

    types = {"KEYWORD": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
             "INT": IndexedValueType.INDEXED_VALUE_TYPE_INT,
             "KEYWORD_LIST": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST}
    await client.operator_service.add_search_attributes(AddSearchAttributesRequest(
        namespace=client.namespace,
        search_attributes={key.name: types[key.indexed_value_type.name] for key in ALL},
    ))


def dev_server_flags() -> list[str]:
    """`--search-attribute Name=Type` flags for `temporal server start-dev`."""
    kinds = {"KEYWORD": "Keyword", "INT": "Int", "KEYWORD_LIST": "KeywordList"}
    flags: list[str] = []
    for key in ALL:
        flags += ["--search-attribute", f"{key.name}={kinds[key.indexed_value_type.name]}"]
    return flags
