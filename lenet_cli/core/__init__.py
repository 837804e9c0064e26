"""The ground floor: errors, settings, plain records, the model, and the mechanisms every job uses
(writing and reading files safely, the device, interrupts, processes working together)."""
