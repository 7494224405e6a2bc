# SPDX-License-Identifier: MIT
# model/model.mk - the Promela models, checked by spin: the wake-up protocol (model/wakeup.pml)
# and the lock-free ring's SLOW-bit protocol of buffered channels (model/ring.pml).
#
#   make model          for each model: spin -a, compile pan (safety: assertions and invalid end
#                       states), and an exhaustive search for each configuration (wakeup.pml:
#                       CFG 1, 2: 3 threads; CFG 3, 4: 4 threads; 2 channels each. ring.pml:
#                       CFG 1-5: 3 or 4 threads on one ring of capacity 1 or 2); then each
#                       mutant (a rule of the C code broken on purpose) must make spin report an
#                       error (ring.pml's mutants: with its SLOW-bit assertions and without).
#                       Fails otherwise.
#   make model-cfg CFG=n        one configuration of wakeup.pml, with pan's full report
#   make model-ring-cfg CFG=n   one configuration of ring.pml, with pan's full report
#
# The searches of wakeup.pml's CFG 3 and 4 take ~30-60 s and ~0.8 GB each, ring.pml's CFG 5
# ~20 s and ~1 GB; the others a few seconds at most.

MODEL_DIR     := build/model
MODEL_CFGS    := 1 2 3 4
MODEL_MUTANTS := 1 2 3 4 5 6
RING_CFGS     := 1 2 3 4 5
RING_MUTANTS  := 1 2 3 4
PAN_CFLAGS    := -O2 -DSAFETY -DCOLLAPSE -DMEMLIM=8192
PAN_RUNFLAGS  := -m1000000

.PHONY: model model-cfg model-ring-cfg model-deps

model-deps:
	@sh scripts/deps.sh model

# $(call pan_build,defines,binary): spin -a with the defines, then pan compiled as binary.
pan_build = cd $(MODEL_DIR) && spin $(1) -a ../../model/wakeup.pml >/dev/null && \
  gcc $(PAN_CFLAGS) -o $(2) pan.c
ring_build = cd $(MODEL_DIR) && spin $(1) -a ../../model/ring.pml >/dev/null && \
  gcc $(PAN_CFLAGS) -o $(2) pan.c

# $(call pan_summary,out): "states stored, transitions, depth" from pan's report.
pan_summary = awk '/states, stored/ {s = $$1} /transitions/ {t = $$1} \
  /depth reached/ {for (i = 1; i < NF; i++) if ($$i == "reached") d = $$(i + 1)} \
  /elapsed time/ {e = $$4} \
  END {sub(",", "", d); printf "%s states stored, %s transitions, depth %s, %s s\n", s, t, d, e}' $(1)

model: model-deps model/wakeup.pml model/ring.pml
	@mkdir -p $(MODEL_DIR)
	@set -e; for cfg in $(MODEL_CFGS); do \
	  ( $(call pan_build,-DCFG=$$cfg,pan_cfg$$cfg) ); \
	  ( cd $(MODEL_DIR) && ./pan_cfg$$cfg $(PAN_RUNFLAGS) > cfg$$cfg.out 2>&1 ) || true; \
	  if grep -q 'errors: 0' $(MODEL_DIR)/cfg$$cfg.out && \
	     ! grep -q 'max search depth too small' $(MODEL_DIR)/cfg$$cfg.out; then \
	    printf 'model CFG=%s: 0 errors, ' $$cfg; \
	    awk '/states, stored/ {s = $$1} /transitions/ {t = $$1} \
	      /depth reached/ {for (i = 1; i < NF; i++) if ($$i == "reached") d = $$(i + 1)} \
	      END {sub(",", "", d); printf "%s states stored, %s transitions, depth %s\n", s, t, d}' \
	      $(MODEL_DIR)/cfg$$cfg.out; \
	  else cat $(MODEL_DIR)/cfg$$cfg.out; echo "model CFG=$$cfg: FAILED"; exit 1; fi; \
	done
	@set -e; for m in $(MODEL_MUTANTS); do for cfg in 1 2 4; do \
	  ( $(call pan_build,-DCFG=$$cfg -DMUTANT=$$m,pan_mutant) ); \
	  ( cd $(MODEL_DIR) && ./pan_mutant $(PAN_RUNFLAGS) > mutant$$m.cfg$$cfg.out 2>&1 ) || true; \
	  if grep -q 'errors: 0' $(MODEL_DIR)/mutant$$m.cfg$$cfg.out; then \
	    echo "model MUTANT=$$m CFG=$$cfg: spin found no error in a broken protocol"; exit 1; fi; \
	  printf 'model MUTANT=%s CFG=%s caught: %s\n' $$m $$cfg \
	    "$$(grep -m1 '^pan:1:' $(MODEL_DIR)/mutant$$m.cfg$$cfg.out)"; \
	done; done
	@set -e; for cfg in $(RING_CFGS); do \
	  ( $(call ring_build,-DCFG=$$cfg,pan_ring$$cfg) ); \
	  ( cd $(MODEL_DIR) && ./pan_ring$$cfg $(PAN_RUNFLAGS) > ring_cfg$$cfg.out 2>&1 ) || true; \
	  if grep -q 'errors: 0' $(MODEL_DIR)/ring_cfg$$cfg.out && \
	     ! grep -q 'max search depth too small' $(MODEL_DIR)/ring_cfg$$cfg.out; then \
	    printf 'model ring CFG=%s: 0 errors, ' $$cfg; \
	    $(call pan_summary,$(MODEL_DIR)/ring_cfg$$cfg.out); \
	  else cat $(MODEL_DIR)/ring_cfg$$cfg.out; echo "model ring CFG=$$cfg: FAILED"; exit 1; fi; \
	done
	@# ring.pml's mutants: 1-3 in CFG 1 and 3, 4 (chan_close) in the configurations with a
	@# closer, 3 and 4; each with the SLOW-bit assertions (SLOWCHECK=1) and without them (0).
	@set -e; for m in $(RING_MUTANTS); do \
	  case $$m in 4) cfgs="3 4" ;; *) cfgs="1 3" ;; esac; \
	  for cfg in $$cfgs; do for sc in 1 0; do \
	    out=ring_mutant$$m.cfg$$cfg.slowcheck$$sc.out; \
	    ( $(call ring_build,-DCFG=$$cfg -DMUTANT=$$m -DSLOWCHECK=$$sc,pan_ring_mutant) ); \
	    ( cd $(MODEL_DIR) && ./pan_ring_mutant $(PAN_RUNFLAGS) > $$out 2>&1 ) || true; \
	    if grep -q 'errors: 0' $(MODEL_DIR)/$$out; then \
	      echo "model ring MUTANT=$$m CFG=$$cfg SLOWCHECK=$$sc: spin found no error in a broken protocol"; \
	      exit 1; fi; \
	    printf 'model ring MUTANT=%s CFG=%s SLOWCHECK=%s caught: %s\n' $$m $$cfg $$sc \
	      "$$(grep -m1 '^pan:1:' $(MODEL_DIR)/$$out)"; \
	  done; done; \
	done
	@echo "make model: every configuration verified, every mutant caught"

model-cfg: model-deps
	@mkdir -p $(MODEL_DIR)
	$(call pan_build,-DCFG=$(or $(CFG),1),pan_cfg)
	cd $(MODEL_DIR) && ./pan_cfg $(PAN_RUNFLAGS)

model-ring-cfg: model-deps
	@mkdir -p $(MODEL_DIR)
	$(call ring_build,-DCFG=$(or $(CFG),1),pan_ring_cfg)
	cd $(MODEL_DIR) && ./pan_ring_cfg $(PAN_RUNFLAGS)
