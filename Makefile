# lockertwin — build, test and run. `make run` and `make test` are the two
# commands a newcomer needs; `make setup` (a dependency of test) installs the
# system packages the tests need, idempotently.

SHELL := /bin/bash
.DEFAULT_GOAL := help

GO        ?= go
BIN       := bin
# Binaries other than the view build without cgo (DESIGN.md).
CMDS      := ./sim/cmd/lockersim ./controller/cmd/lockerd ./twin/cmd/lockerfleet
VIEW_CMD  := ./visualize/cmd/lockerview
SCENARIO  ?= scenarios/residential-tower.yaml
OUT       ?= out/residential-tower

# System packages: Ebiten's X11/GL headers (cgo) and Xvfb for the view's
# tests under a virtual display.
SETUP_PKGS := pkg-config libgl1-mesa-dev libxcursor-dev libxi-dev libxinerama-dev \
              libxrandr-dev libxxf86vm-dev libasound2-dev xvfb xauth mosquitto-clients chromium

.PHONY: help setup build test test-go fmt-check vet bench perf count pgo soak run lint clean view view-web

help:
	@echo "make run    - the main job on a shipped scenario ($(SCENARIO))"
	@echo "make test   - install what the tests need, then gofmt, vet and all tests"
	@echo "make build  - build the binaries into $(BIN)/"
	@echo "make bench  - the benchmarks (engine, allocator, ...)"
	@echo "make perf   - the city month and the lifecycle benchmark against their goals, RUNS=10 rounds"
	@echo "make count  - the lifecycle's instructions under valgrind: a figure that repeats, for A/B of a change"
	@echo "make pgo    - refresh lockersim's profile for profile-guided optimisation from a city month"
	@echo "make soak   - long checks: city memory bounded over 8 simulated days (~20 s)"
	@echo "make setup  - install missing system packages with apt-get"
	@echo "make view   - the live view of a scenario (desktop); make view-web - its browser build"

setup:
	@missing=""; \
	for p in $(SETUP_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then \
	  echo "setup: system packages present"; \
	else \
	  echo "setup: installing$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null \
	    || { echo "setup: apt-get failed for$$missing" >&2; exit 1; }; \
	  echo "setup: done"; \
	fi
	@$(GO) mod download

# The view links Ebiten through cgo and needs setup's X11 headers; the
# other binaries need nothing but Go.
build: setup
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -o $(BIN)/ $(CMDS)
	$(GO) build -o $(BIN)/ $(VIEW_CMD)

fmt-check:
	@unformatted=$$(gofmt -l $$(git ls-files -co --exclude-standard '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi

vet:
	$(GO) vet ./...

# Packages whose tests need a display run under xvfb-run.
DISPLAY_PKGS := ./visualize/...

# Packages with goroutines of their own (broker, MQTT link) and the
# controller also run under the race detector, and so do a world's shards
# running side by side (-short: without the single-threaded stepping check,
# which the plain run covers).
RACE_PKGS := ./controller/... ./twin/...

# A package whose tests hang fails after this, with every goroutine's stack,
# instead of holding CI for go test's default 10 minutes.
TEST_TIMEOUT := 4m

test-go:
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) $$($(GO) list ./... | grep -v '/visualize')
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) -race $(RACE_PKGS)
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) -race -short -run 'TestShardsRunTheSameWhateverRunsThem' ./sim/world/
	xvfb-run -a $(GO) test -count=1 -timeout $(TEST_TIMEOUT) $(DISPLAY_PKGS)

test: setup fmt-check vet test-go

# lockersim is built with profile-guided optimisation: go build takes the
# default.pgo beside its main package, a CPU profile of the city month
# (make pgo refreshes it). go test takes no profile unless told, so the
# benchmarks of the code lockersim runs are built with the same one, to
# measure what lockersim runs; PGO=off measures them without.
PGO ?= sim/cmd/lockersim/default.pgo

bench:
	$(GO) test -pgo=$(PGO) -run '^$$' -bench . -benchmem ./sim/ ./allocator/ ./controller/ ./internal/digest/ ./twin/
	$(GO) test -run '^$$' -bench . -benchtime 20000x ./twin/broker/
	$(GO) test -run '^$$' -bench . -benchtime 2000x ./controller/store/sqlite/
	$(GO) test -run '^$$' -bench Flows -benchtime 8000x ./controller/service/
	FLOWS_SYNC=normal $(GO) test -run '^$$' -bench Flows -benchtime 8000x ./controller/service/

# The two performance goals (city month ≤ 30 s, lifecycle ≤ 2,000 ns), over
# RUNS interleaved rounds: a distribution, because this host's speed drifts.
RUNS ?= 10
perf:
	scripts/perf.sh $(RUNS)

# The profile lockersim is built with: a CPU profile of the city month,
# taken from lockersim as it is built now (a profile of a PGO build is as
# good, and source changes since only leave parts of it unused).
pgo:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./sim/cmd/lockersim
	$(BIN)/lockersim run scenarios/city-network.yaml -cpuprofile $(BIN)/city.pgo >/dev/null
	mv $(BIN)/city.pgo sim/cmd/lockersim/default.pgo
	@echo "pgo: sim/cmd/lockersim/default.pgo refreshed; make perf to see its effect"

# The lifecycle counted in instructions (valgrind, installed if missing):
# repeats to within 0.1 %, where a timing drifts by a third. TOP=N also
# lists the N functions with the most.
TOP ?= 0
count:
	@$(MAKE) --no-print-directory setup SETUP_PKGS=valgrind
	PGO=$(PGO) scripts/count.sh $(TOP)

# Long checks kept out of make test: the city network's memory stays bounded
# by its live state over 8 simulated days (about 20 s).
soak:
	$(GO) test -tags soak -count=1 -v -timeout 20m -run 'TestCityMemoryIsBoundedByLiveState' ./sim/world/

# The live view on the desktop (needs a display), and its browser build,
# which lockerd serves with -view bin/view.
view: setup
	$(GO) run ./visualize/cmd/lockerview -scenario $(SCENARIO)

view-web:
	@mkdir -p $(BIN)/view
	GOOS=js GOARCH=wasm $(GO) build -o $(BIN)/view/lockerview.wasm ./visualize/cmd/lockerview
	cp "$$($(GO) env GOROOT)/lib/wasm/wasm_exec.js" visualize/web/index.html $(BIN)/view/
	@echo "serve it: bin/lockerd -view $(BIN)/view, then open http://127.0.0.1:8080/view/?scenario=city-network.yaml"

# The main job: simulate a shipped scenario with the real controller and
# write its KPIs, time series and report. It needs only lockersim, which is
# pure Go: no system packages, no root.
run:
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -o $(BIN)/ ./sim/cmd/lockersim
	$(BIN)/lockersim run $(SCENARIO) -out $(OUT)
	@echo "report: $(OUT)/report.html (open it in a browser; it needs no network)"

lint: vet fmt-check

clean:
	rm -rf $(BIN) out
