package sim

import "errors"

// PlantModel returns the generated plant (placeholder until the generator lands).
func PlantModel(areas int) (*Model, error) { return nil, errors.New("sim: plant not implemented") }
