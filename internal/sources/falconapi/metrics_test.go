package falconapi

import (
	"testing"

	dto "github.com/prometheus/client_model/go"
)

func gaugeValue(t *testing.T, src *Source, resource string) float64 {
	t.Helper()
	var m dto.Metric
	if err := src.m.disabled.WithLabelValues(resource).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}
