// Command lockerd is the lockertwin controller as a service: HTTP API,
// embedded MQTT broker for cabinets, SQLite event store. It is flags and
// wiring around controller/service.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/lockertwin/lockertwin/controller/service"
	"github.com/lockertwin/lockertwin/controller/store/sqlite"
	"github.com/lockertwin/lockertwin/scenarios"
)

// fileConfig is the optional -config YAML, decoded as strictly as scenarios.
type fileConfig struct {
	HTTP     string `yaml:"http"`
	MQTT     string `yaml:"mqtt"`
	WS       string `yaml:"ws"`
	Data     string `yaml:"data"`
	Scenario string `yaml:"scenario"`
	Webhook  string `yaml:"webhook"`
	Sync     string `yaml:"sync"`
	View     string `yaml:"view"`
	LogLevel string `yaml:"log_level"`
	// StatusGrace is a Go duration ("2m"); see -status-grace.
	StatusGrace string `yaml:"status_grace"`
}

func main() { os.Exit(run(os.Args[1:], os.Stderr)) }

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("lockerd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configFile := fs.String("config", "", "optional YAML configuration (flags given on the command line win; relative paths in it are relative to its directory)")
	httpAddr := fs.String("http", ":8080", "HTTP API address")
	mqttAddr := fs.String("mqtt", ":1883", "MQTT listener address for cabinets")
	wsAddr := fs.String("ws", "", "optional MQTT-over-WebSocket listener address")
	dataDir := fs.String("data", "lockerd-data", "directory for the store, keys, tokens and credentials")
	scenarioFile := fs.String("scenario", "", "provision the sites and cabinets of a scenario (idempotent)")
	webhook := fs.String("webhook", "", "POST notifications (with pickup codes) to this URL")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	viewDir := fs.String("view", "", "serve the browser view built by `make view-web` from this directory at /view/")
	syncMode := fs.String("sync", "full", "store durability: full (survives power loss) or normal (survives a crash, not a power cut; about a quarter faster)")
	statusGrace := fs.Duration("status-grace", service.DefaultStatusGrace, "after start, how long a cabinet has to report online before nothing more is reserved in it (negative: never)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	// Flag parsing stops at the first argument that is not a flag: the
	// flags after it would be ignored with it.
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "lockerd: unexpected argument %q: lockerd takes only flags (a scenario to provision is -scenario FILE; see -h)\n", fs.Arg(0))
		return 2
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *configFile != "" {
		data, err := os.ReadFile(*configFile)
		if err != nil {
			fmt.Fprintln(stderr, "lockerd: cannot read the configuration:", err)
			return 1
		}
		var fc fileConfig
		if ps := scenarios.DecodeStrict(*configFile, data, &fc); len(ps) > 0 {
			fmt.Fprintln(stderr, ps.Error())
			return 1
		}
		// A path in the file means the same wherever lockerd is started
		// from (`lockerd -config /etc/lockerd/lockerd.yaml`): relative to
		// the file, not to the working directory.
		for _, p := range []*string{&fc.Data, &fc.Scenario, &fc.View} {
			if *p != "" && !filepath.IsAbs(*p) {
				*p = filepath.Join(filepath.Dir(*configFile), *p)
			}
		}
		for name, v := range map[string]struct {
			dst *string
			val string
		}{"http": {httpAddr, fc.HTTP}, "mqtt": {mqttAddr, fc.MQTT}, "ws": {wsAddr, fc.WS}, "data": {dataDir, fc.Data},
			"scenario": {scenarioFile, fc.Scenario}, "webhook": {webhook, fc.Webhook}, "log-level": {logLevel, fc.LogLevel}, "sync": {syncMode, fc.Sync}, "view": {viewDir, fc.View}} {
			if !set[name] && v.val != "" {
				*v.dst = v.val
			}
		}
		if !set["status-grace"] && fc.StatusGrace != "" {
			d, err := time.ParseDuration(fc.StatusGrace)
			if err != nil {
				fmt.Fprintf(stderr, "lockerd: %s: status_grace: %v\n", *configFile, err)
				return 1
			}
			*statusGrace = d
		}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintln(stderr, "lockerd: -log-level:", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg := service.Config{HTTPAddr: *httpAddr, MQTTAddr: *mqttAddr, WSAddr: *wsAddr, DataDir: *dataDir, Logger: log, Sync: sqlite.Sync(*syncMode), ViewDir: *viewDir,
		StatusGrace: *statusGrace}
	if *scenarioFile != "" {
		sc, warnings, err := scenarios.Load(*scenarioFile)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		if len(warnings) > 0 {
			fmt.Fprintln(stderr, warnings.Error())
		}
		if cfg.Sites, err = service.LayoutsFromScenario(sc); err != nil {
			fmt.Fprintln(stderr, "lockerd:", err)
			return 1
		}
	}
	if *webhook != "" {
		key, err := service.LoadWebhookKey(cfg.DataDir)
		if err != nil {
			fmt.Fprintln(stderr, "lockerd:", err)
			return 1
		}
		wh, err := service.NewWebhook(*webhook, key, log)
		if err != nil {
			fmt.Fprintln(stderr, "lockerd:", err)
			return 1
		}
		defer wh.Close()
		cfg.Notifier = wh
	}
	svc, err := service.New(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "lockerd:", err)
		return 1
	}
	if err := svc.Start(); err != nil {
		fmt.Fprintln(stderr, "lockerd:", err)
		return 1
	}
	admin, courier := svc.Tokens()
	ws := ""
	if a := svc.WSAddr(); a != "" {
		ws = ", MQTT over WebSocket on ws://" + a
	}
	fmt.Fprintf(stderr, "lockerd: HTTP on %s, MQTT on %s%s, data in %s\n", svc.HTTPAddr(), svc.MQTTAddr(), ws, *dataDir)
	fmt.Fprintf(stderr, "lockerd: tokens in %s/tokens.json (admin %s…, courier %s…); new cabinet credentials in %s/new-cabinet-secrets.json\n",
		*dataDir, admin[:6], courier[:6], *dataDir)
	if cfg.Notifier != nil {
		fmt.Fprintf(stderr, "lockerd: webhooks to %s, signed with the key in %s/%s (header %s)\n", *webhook, *dataDir, service.WebhookKeyFile, service.SignatureHeader)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := svc.Shutdown(ctx); err != nil {
		fmt.Fprintln(stderr, "lockerd: shutdown:", err)
		return 1
	}
	return 0
}
