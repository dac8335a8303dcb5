"""From raw table rows to model inputs: recipes, the public feature spec, CSV reading."""

from ppml.features.outputs import Output
from ppml.features.recipes import GenericRecipe, LaptopRecipe, Recipe
from ppml.features.spec import FeatureSpec
from ppml.features.table import CsvTable

__all__ = ["CsvTable", "FeatureSpec", "GenericRecipe", "LaptopRecipe", "Output", "Recipe"]
