"""The function's own settings (`Registry(settings=Model)`) in the rendered manifests: their
defaults in the ConfigMap, their secrets among the Secret's documented keys, never both."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pydantic import BaseModel, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

import manifests
from eventfn import Catalogue, EventSpec


class Payload(BaseModel):
    text: str


class OrderSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ORDERS_")
    pricing_url: str = "http://pricing.shop.svc"
    max_items: int = 20
    express: bool = False
    pricing_api_key: SecretStr = SecretStr("")
    webhook: SecretStr = SecretStr("")


class Unrenderable(BaseSettings):
    region: str


CATALOGUE = Catalogue((EventSpec("com.acme.order", Payload, "An order.", consumes=True),))


def rendered(own: type[BaseSettings] | None) -> dict[str, Any]:
    files = manifests.render(CATALOGUE, own=own)
    return {path: yaml.safe_load(text) for path, text in files.items() if path.endswith(".yaml")}


def test_the_defaults_of_the_functions_settings_are_in_the_configmap() -> None:
    """Each field, by its environment name (the model's prefix), with its default."""
    data = rendered(OrderSettings)["configmap.yaml"]["data"]
    assert data["ORDERS_PRICING_URL"] == "http://pricing.shop.svc"
    assert (data["ORDERS_MAX_ITEMS"], data["ORDERS_EXPRESS"]) == ("20", "false")


def test_the_functions_secrets_are_documented_in_the_secret_never_in_the_configmap() -> None:
    """SecretStr fields and secret-like names go to the Secret's keys only."""
    docs = rendered(OrderSettings)
    secret = docs["secret.example.yaml"]["stringData"]
    assert {"ORDERS_PRICING_API_KEY", "ORDERS_WEBHOOK"} <= set(secret)
    assert not {"ORDERS_PRICING_API_KEY", "ORDERS_WEBHOOK"} & set(docs["configmap.yaml"]["data"])


def test_the_service_reads_the_configmap_that_carries_them() -> None:
    """The template's configMapRef names the ConfigMap with the function's settings in it, so
    changing one of their defaults rolls out a Revision."""
    with_own, without = rendered(OrderSettings), rendered(None)
    name = with_own["configmap.yaml"]["metadata"]["name"]
    env = with_own["service.yaml"]["spec"]["template"]["spec"]["containers"][0]["envFrom"]
    assert {"configMapRef": {"name": name}} in env
    assert name != without["configmap.yaml"]["metadata"]["name"]


def test_a_setting_without_a_default_cannot_be_rendered() -> None:
    """A required non-secret field fails the render, naming it and saying what to do."""
    with pytest.raises(ValueError, match=r"Unrenderable.region \(REGION\) has no default"):
        manifests.render(CATALOGUE, own=Unrenderable)


def test_the_example_function_declares_no_settings_of_its_own() -> None:
    """Today's eventing/ is what the function's registry renders (no own settings yet)."""
    registry = manifests.function_registry()
    assert manifests.render(registry.catalogue, own=registry.settings) == manifests.render()
