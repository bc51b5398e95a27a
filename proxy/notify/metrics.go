package notify

import "github.com/VictoriaMetrics/metrics"

// destinationsDisabled counts destinations disabled for failing too long
// (an operator alert: docs/metrics.md).
var destinationsDisabled = metrics.GetOrCreateCounter(`tollgate_notification_destinations_disabled_total`)

var deliveryCounters = map[[2]string]*metrics.Counter{}

func init() {
	for _, ch := range []string{Webhook, Email} {
		for _, result := range []string{"ok", "failed"} {
			deliveryCounters[[2]string{ch, result}] = metrics.GetOrCreateCounter(`tollgate_notification_deliveries_total{channel="` + ch + `",result="` + result + `"}`)
		}
	}
}

// deliveries counts one attempt of channel.
func deliveries(channel string, ok bool) *metrics.Counter {
	result := "ok"
	if !ok {
		result = "failed"
	}
	return deliveryCounters[[2]string{channel, result}]
}
