package main

import (
	"cmp"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/tollgate/tollgate/meter"
	"github.com/tollgate/tollgate/proxy/notify"
)

// openNotifier builds the notifier from notifications (when enabled) and
// records the notices of the catalogue just accepted.
func (p *process) openNotifier(notices []meter.CatalogueNotice) error {
	nc := p.fc.Notifications
	if !nc.Enabled {
		return nil
	}
	cfg := notify.Config{Ledger: p.ledger, Log: p.wlog, Timeout: time.Duration(nc.Webhooks.Timeout),
		DisableAfter: time.Duration(nc.Webhooks.DisableAfter), Logger: p.logger,
		TemplatesDir: cmp.Or(nc.TemplatesDir, filepath.Join(p.fc.DataDir, "notifications", "templates"))}
	for _, s := range nc.Webhooks.AllowNetworks {
		prefix, err := netip.ParsePrefix(s)
		if err != nil {
			return fmt.Errorf("notifications.webhooks.allow_networks: %q: %w", s, err)
		}
		cfg.AllowNetworks = append(cfg.AllowNetworks, prefix)
	}
	if nc.SMTP.Host != "" {
		if nc.SMTP.From == "" || (nc.SMTP.TLS != "starttls" && nc.SMTP.TLS != "implicit" && nc.SMTP.TLS != "none") {
			return fmt.Errorf("notifications.smtp: with a host, from is required and tls is starttls, implicit or none")
		}
		cfg.SMTP = &notify.SMTP{Host: nc.SMTP.Host, Port: nc.SMTP.Port, TLS: nc.SMTP.TLS, Username: nc.SMTP.Username,
			Password: os.Getenv("TOLLGATE_SMTP_PASSWORD"), From: nc.SMTP.From}
	}
	var err error
	if p.notifier, err = notify.New(cfg); err != nil {
		return err
	}
	return p.notifier.Catalogue(notices)
}
