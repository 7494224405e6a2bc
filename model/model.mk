# model/model.mk - the Promela model of the wake-up protocol (model/wakeup.pml), checked by spin.
#
#   make model          spin -a, compile pan (safety: assertions and invalid end states), and an
#                       exhaustive search for each configuration (CFG 1, 2: 3 threads; CFG 3, 4:
#                       4 threads; 2 channels each); then each mutant (a rule of the C code
#                       broken on purpose) must make spin report an error. Fails otherwise.
#   make model-cfg CFG=n   one configuration, with pan's full report
#
# The searches of CFG 3 and 4 take ~30-60 s and ~0.8 GB each; the others a second each.

MODEL_DIR     := build/model
MODEL_CFGS    := 1 2 3 4
MODEL_MUTANTS := 1 2 3 4 5 6
PAN_CFLAGS    := -O2 -DSAFETY -DCOLLAPSE -DMEMLIM=8192
PAN_RUNFLAGS  := -m1000000

.PHONY: model model-cfg model-deps

model-deps:
	@sh scripts/deps.sh model

# $(call pan_build,defines,binary): spin -a with the defines, then pan compiled as binary.
pan_build = cd $(MODEL_DIR) && spin $(1) -a ../../model/wakeup.pml >/dev/null && \
  gcc $(PAN_CFLAGS) -o $(2) pan.c

model: model-deps model/wakeup.pml
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
	@echo "make model: every configuration verified, every mutant caught"

model-cfg: model-deps
	@mkdir -p $(MODEL_DIR)
	$(call pan_build,-DCFG=$(or $(CFG),1),pan_cfg)
	cd $(MODEL_DIR) && ./pan_cfg $(PAN_RUNFLAGS)
