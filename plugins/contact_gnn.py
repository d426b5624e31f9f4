"""``gnn``: the contact graph network as a torch contact model (``simulation.contact = "gnn"``,
``[contact] weights = "..."``); the network and its physics are in
:mod:`engine.diff.contact_gnn`. The weights are checked when the scene is loaded: a missing or
unreadable file, or weights of another architecture or dimension, is a validation error at
``contact.weights``, never a run that starts and then fails."""

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from engine.hooks import hookimpl
from engine.hooks.records import ContactModel


class GNNParams(BaseModel):
    """``[contact]`` for ``contact = "gnn"``."""

    model_config = ConfigDict(extra="forbid")
    weights: str = Field(description="Trained contact weights (.pt, with a .json sidecar).")

    @field_validator("weights")
    @classmethod
    def weights_load(cls, value: str, info: ValidationInfo) -> str:
        """Resolve against the scene's folder and load them once for the scene's dimension."""
        from engine.diff.contact_gnn import ContactWeightsError, load_contact_gnn

        context = info.context or {}
        path = (Path(context.get("base_dir", ".")) / value).resolve()
        try:
            load_contact_gnn(path, context.get("dim", 2))
        except ContactWeightsError as error:
            raise ValueError(f"{error.what} ({error.fix})") from None
        return str(path)


def create(params: GNNParams, simulation):
    from engine.diff.contact_gnn import load_contact_gnn

    store = simulation.store
    return load_contact_gnn(params.weights, simulation.dim, store.device, store.float_torch)


@hookimpl
def engine_register_contact_models():
    return [ContactModel(name="gnn", create=create, Params=GNNParams)]
