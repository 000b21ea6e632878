# gsl-darknet: the one build.
#   make            CPU build of bin/darknet (real Darknet + the gsl plugin), installing what is missing first
#   make test       CPU build, then every test in tests/; ends with "N passed, N failed"
#   make GPU=1      CUDA build of bin/darknet (nvcc 13, cuBLAS); BLAS=0 where OpenBLAS cannot be installed
#   make test SANITIZE=1   the tests built with AddressSanitizer and UBSan
#   make MPI=1      bin/darknet with multi-process training (mpirun/srun; docs/cluster.md); with GPU=1 also NCCL
# Options: GPU=0|1  BLAS=1|0  CUDNN=0|1  SANITIZE=0|1  ARCH="-gencode ..."  DARKNET_SRC=path (upstream checkout)
#          SETUP=0 (install nothing: a GPU host without package access)
#          MPI=0|1  NCCL=1|0 (GPU=1 MPI=1: GPU buffers all-reduced by NCCL, or NCCL=0 through host memory and MPI)
# MPI: only distributed training differs between the builds (darknet/dist_single.c or darknet/dist_mpi.c), and
# $(B)/darknet-mpi (the MPI one)
# is built next to $(B)/darknet whenever mpicc is found: `make test` runs tests/test_dist.sh with it, and
# `test-bins` compiles it (with NCCL under GPU=1). MPI=1 makes bin/darknet that binary; the default bin/darknet does
# not link libmpi and refuses to run as one of several ranks.

GPU      ?= 0
BLAS     ?= 1
CUDNN    ?= 0
SANITIZE ?= 0
ARCH     ?= -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90
SETUP    ?= 1
MPI      ?= 0
NCCL     ?= 1
PYTHON   ?= /usr/bin/python3
NPROC    := $(shell nproc 2>/dev/null || echo 2)

NVCC      ?= $(shell command -v nvcc 2>/dev/null)
CUDA_HOME ?= $(if $(NVCC),$(patsubst %/bin/nvcc,%,$(NVCC)),/usr/local/cuda)
# Open MPI's wrapper says which flags its library needs (MPICH: set MPI_CFLAGS/MPI_LIBS from `mpicc -show`).
MPICC      ?= $(shell command -v mpicc 2>/dev/null)
MPI_CFLAGS ?= $(if $(MPICC),$(shell $(MPICC) --showme:compile 2>/dev/null),)
MPI_LIBS   ?= $(if $(MPICC),$(shell $(MPICC) --showme:link 2>/dev/null),)
DIST_NCCL  := $(and $(filter 1,$(GPU)),$(filter 1,$(NCCL)))

comma := ,
V   := $(if $(filter 1,$(GPU)),gpu,cpu)
DN  := build/darknet-$(V)$(if $(filter 1,$(CUDNN)),-cudnn,)
B   := build/$(V)$(if $(filter 1,$(CUDNN)),-cudnn,)$(if $(filter 1,$(SANITIZE)),-san,)$(if $(filter 0,$(BLAS)),-noblas,)
SRC := build/darknet-src

CC      ?= gcc
WARN    := -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare -Wno-missing-field-initializers
OPT     := -O3 -march=x86-64-v2 -g
SANITIZERS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
SANFL   := $(if $(filter 1,$(SANITIZE)),$(SANITIZERS),)
CFLAGS_ := -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) $(SANFL) $(if $(filter 0,$(BLAS)),-DGSLQ_NO_BLAS,)
DNINC   := -I$(DN)/include -I$(DN)/src $(if $(filter 1,$(GPU)),-DGPU -I$(CUDA_HOME)/include,) \
           $(if $(filter 1,$(CUDNN)),-DCUDNN,)
NVFLAGS := $(ARCH) -O3 -std=c++17 -DcudaThreadSynchronize=cudaDeviceSynchronize -Xcompiler -fPIC

LIBS := -lz -lm -pthread
ifeq ($(BLAS),1)
LIBS += -lopenblas -llapacke
endif
ifeq ($(GPU),1)
LIBS += -L$(CUDA_HOME)/lib64 -lcudart -lcublas -lcurand -lstdc++ -Wl,-rpath,$(CUDA_HOME)/lib64
endif
ifeq ($(CUDNN),1)
LIBS += -lcudnn
endif
TESTLIBS := $(LIBS)

# Darknet's own objects: its library, and its example programs with their main renamed.
DN_EXAMPLES := captcha lsd super art tag cifar go rnn segmenter regressor classifier coco yolo detector nightmare \
               instance-segmenter
DN_EXOBJ    := $(addprefix $(DN)/obj/,$(addsuffix .o,$(DN_EXAMPLES)))
DN_COMMON   := -Iinclude/ -Isrc/ $(if $(filter 1,$(GPU)),-DGPU -I$(CUDA_HOME)/include/ -DcudaThreadSynchronize=cudaDeviceSynchronize,) \
               $(if $(filter 1,$(CUDNN)),-DCUDNN -include $(CURDIR)/darknet/cudnn_compat.h,)
# OVERRIDE_SRC (below) replaces some of Darknet's functions; Darknet's become weak so ours win. CUDNN=1: upstream's
# sources see darknet/cudnn_compat.h first (the cuDNN 7 queries it calls, provided on cuDNN 8/9's).
DN_LIB      := $(DN)/libdarknet_weak.a

QUANT_SRC  := $(wildcard quant/*.c)
LAYERS_SRC := $(wildcard layers/*.c)
LAYERS_CU  := $(if $(filter 1,$(GPU)),$(wildcard layers/*.cu),)
# Overrides of Darknet functions (linked as objects before libdarknet, whose copies of DN_WEAK_SYMS are made weak):
# the batch copy that fits the network's input and max-pooling's backward pass safe on NaN (every build), and with
# OpenBLAS the CPU gemm and convolutions.
OVERRIDE_SRC := darknet/train_network.c darknet/maxpool_backward.c darknet/upstream_strict.c $(if $(filter 1,$(BLAS)),darknet/blas_gemm.c darknet/fast_conv.c,)
# GPU=1 without cuDNN: the batched GPU convolution (darknet/conv_gpu.cu).
GPU_CONV    := $(and $(filter 1,$(GPU)),$(filter-out 1,$(CUDNN)))
# (One weak library serves BLAS=0 and BLAS=1: a weak function nobody overrides is still linked.)
DN_WEAK_SYMS := train_network gemm gemm_cpu forward_convolutional_layer backward_convolutional_layer \
                forward_maxpool_layer backward_maxpool_layer forward_convolutional_layer_gpu \
                backward_convolutional_layer_gpu option_unused get_activation file_error
CMD_SRC    := $(filter-out darknet/main.c darknet/dist_mpi.c darknet/train_network.c darknet/maxpool_backward.c \
                darknet/upstream_strict.c \
                darknet/blas_gemm.c darknet/fast_conv.c,\
                $(wildcard darknet/*.c))
# tests/test_gpu_*.c compare CUDA kernels with the CPU path: built with GPU=1, run on a GPU host by `make test-gpu`.
TEST_SRC   := $(filter-out tests/test_gpu_%,$(wildcard tests/test_*.c))
# libgslq's own tests (and the BLAS kernel choice's) link libgslq alone: quant/ needs nothing of ours or Darknet's.
QUANT_TEST_SRC := $(wildcard tests/test_quant.c tests/test_quant_*.c) tests/test_blas.c
GPU_TEST_SRC := $(if $(filter 1,$(GPU)),$(filter-out $(if $(filter 1,$(CUDNN)),tests/test_gpu_conv.c,),\
                  $(wildcard tests/test_gpu_*.c)),)
TEST_SH    := $(wildcard tests/test_*.sh)
# The MPI binary, built alongside whenever mpicc is found (MPI=1: required, and it becomes bin/darknet).
MPI_BIN    := $(if $(or $(MPICC),$(filter 1,$(MPI))),$(B)/darknet-mpi,)

QUANT_OBJ  := $(QUANT_SRC:%.c=$(B)/obj/%.o)
LAYERS_OBJ := $(LAYERS_SRC:%.c=$(B)/obj/%.o) $(LAYERS_CU:%.cu=$(B)/obj/%.cu.o)
CMD_OBJ    := $(CMD_SRC:%.c=$(B)/obj/%.o)
OVERRIDE_OBJ := $(OVERRIDE_SRC:%.c=$(B)/obj/%.o) $(if $(GPU_CONV),$(B)/obj/darknet/conv_gpu.cu.o,)
TEST_BIN   := $(TEST_SRC:tests/%.c=$(B)/tests/%)
GPU_TEST_BIN := $(GPU_TEST_SRC:tests/%.c=$(B)/tests/%)

OUR_LIBS := $(B)/libgslcmd.a $(B)/libgsllayers.a $(B)/libgslq.a
LINK_IN  := $(OUR_LIBS) $(OVERRIDE_OBJ) $(DN_LIB)

.PHONY: all setup test quant-test demo test-gpu test-bins bench-bins fuzz fuzz-bins clean distclean
.DELETE_ON_ERROR:

# The binary is bin/darknet: the repository's darknet/ folder (Darknet integration, fixed by the design's layout)
# holds the name ./darknet. Run it from the repository root as bin/darknet, or put bin/ on PATH.
all: bin/darknet

# ---------------------------------------------------------------- set-up (installs only what is missing)
setup:
	@GPU=$(GPU) BLAS=$(BLAS) SETUP=$(SETUP) scripts/setup.sh

$(SRC)/.fetched:
	@GPU=$(GPU) BLAS=$(BLAS) SETUP=$(SETUP) scripts/setup.sh
	darknet/fetch.sh $(SRC)

# ---------------------------------------------------------------- upstream Darknet, hooked and built in its folder
$(DN)/.hooked: $(SRC)/.fetched darknet/hook.sh $(if $(filter 1,$(CUDNN)),darknet/cudnn_compat.h,)
	rm -rf $(DN) && mkdir -p build && cp -a $(SRC) $(DN)
	darknet/hook.sh $(DN)
	touch $@

$(DN)/libdarknet.a: $(DN)/.hooked | $(B)/.found
	@echo "building Darknet ($(V)) in $(DN) (log: $(DN)/build.log)"
	@$(MAKE) -C $(DN) GPU=$(GPU) CUDNN=$(CUDNN) OPENCV=0 OPENMP=0 NVCC="$(NVCC)" ARCH="$(ARCH)" \
	    COMMON="$(DN_COMMON)" obj libdarknet.a obj/darknet.o $(DN_EXAMPLES:%=obj/%.o) > $(DN)/build.log 2>&1 \
	  || { tail -n 40 $(DN)/build.log; echo "error: building Darknet failed (full log: $(DN)/build.log)"; exit 1; }

$(DN)/libdarknet_weak.a: $(DN)/libdarknet.a Makefile
	objcopy $(DN_WEAK_SYMS:%=--weaken-symbol=%) $< $@

$(DN)/darknet_main.o: $(DN)/libdarknet.a
	objcopy --redefine-sym main=darknet_main $(DN)/obj/darknet.o $@

$(DN_EXOBJ): $(DN)/libdarknet.a

# ---------------------------------------------------------------- our code
# quant/ sees only itself; layers/ and darknet/ see Darknet's headers too.
$(B)/obj/quant/%.o: quant/%.c $(wildcard quant/*.h) | $(B)/.found
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_) -Iquant -c $< -o $@

$(B)/obj/layers/%.o: layers/%.c $(wildcard layers/*.h quant/*.h) $(DN)/libdarknet.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_) -Ilayers -Iquant $(DNINC) -c $< -o $@

$(B)/obj/layers/%.cu.o: layers/%.cu $(wildcard layers/*.h quant/*.h) $(DN)/libdarknet.a
	@mkdir -p $(@D)
	$(NVCC) $(NVFLAGS) -Ilayers -Iquant $(DNINC) -c $< -o $@

$(B)/obj/darknet/%.o: darknet/%.c $(wildcard darknet/*.h layers/*.h quant/*.h) $(DN)/libdarknet.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_) -Idarknet -Ilayers -Iquant $(DNINC) $(if $(GPU_CONV),-DGSL_GPU_CONV,) -c $< -o $@

$(B)/obj/darknet/%.cu.o: darknet/%.cu $(DN)/libdarknet.a
	@mkdir -p $(@D)
	$(NVCC) $(NVFLAGS) $(DNINC) -c $< -o $@

$(B)/libgslq.a: $(QUANT_OBJ)
	@rm -f $@; ar rcs $@ $^
$(B)/libgsllayers.a: $(LAYERS_OBJ)
	@rm -f $@; ar rcs $@ $^
$(B)/libgslcmd.a: $(CMD_OBJ)
	@rm -f $@; ar rcs $@ $^

$(B)/darknet: $(B)/obj/darknet/main.o $(DN)/darknet_main.o $(DN_EXOBJ) $(LINK_IN)
	$(CC) $(SANFL) $(B)/obj/darknet/main.o $(DN)/darknet_main.o $(DN_EXOBJ) $(LINK_IN) $(LIBS) -o $@

# dist_mpi.c (MPI, and NCCL under GPU=1): linked as an object before libgslcmd.a, so the archive's single-process
# dist_single.o is not pulled in.
$(B)/obj/darknet/dist_mpi.o: darknet/dist_mpi.c $(wildcard darknet/*.h layers/*.h quant/*.h) $(DN)/libdarknet.a
	@[ -n "$(MPICC)" ] || { echo "error: MPI=1 needs mpicc (Open MPI: apt-get install openmpi-bin libopenmpi-dev)" >&2; exit 1; }
	@$(if $(DIST_NCCL),echo '#include <nccl.h>' | $(CC) -E -x c - -I$(CUDA_HOME)/include >/dev/null 2>&1 \
	  || { echo "error: GPU=1 MPI: nccl.h not found in $(CUDA_HOME)/include (NCCL=0 all-reduces GPU buffers through host memory)" >&2; exit 1; },:)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_) -DGSL_MPI $(if $(DIST_NCCL),-DGSL_NCCL,) $(MPI_CFLAGS) -Idarknet -Ilayers -Iquant $(DNINC) -c $< -o $@

$(B)/darknet-mpi: $(B)/obj/darknet/main.o $(B)/obj/darknet/dist_mpi.o $(DN)/darknet_main.o $(DN_EXOBJ) $(LINK_IN)
	$(CC) $(SANFL) $(B)/obj/darknet/main.o $(B)/obj/darknet/dist_mpi.o $(DN)/darknet_main.o $(DN_EXOBJ) \
	  $(LINK_IN) $(LIBS) $(MPI_LIBS) $(if $(DIST_NCCL),-lnccl,) -o $@

# Copied whenever it differs, so that bin/darknet is always the configuration built last.
.PHONY: bin/darknet
bin/darknet: $(B)/darknet$(if $(filter 1,$(MPI)),-mpi,)
	@mkdir -p bin
	@cmp -s $< $@ || { cp $< $@.tmp && mv -f $@.tmp $@; } # mv: a running bin/darknet does not block it
	@echo "built bin/darknet ($(V)$(if $(filter 1,$(BLAS)),, without OpenBLAS)$(if $(filter 1,$(SANITIZE)), sanitized,)$(if $(filter 1,$(MPI)),$(comma) MPI$(if $(DIST_NCCL), + NCCL,),))$(if $(filter 1,$(BLAS)),$(if $(filter 0,$(GPU)),: $$(bin/darknet gsl info 2>&1 | sed -n 's/^blas: //p'),),)"

# Says what the build found, and fails when something asked for is missing.
$(B)/.found: scripts/detect.sh
	@mkdir -p $(B)
	@GPU=$(GPU) BLAS=$(BLAS) SETUP=$(SETUP) scripts/setup.sh
	@GPU=$(GPU) BLAS=$(BLAS) CUDNN=$(CUDNN) NVCC="$(NVCC)" CUDA_HOME="$(CUDA_HOME)" scripts/detect.sh
	@touch $@

# ---------------------------------------------------------------- tests
QUANT_TEST_BIN := $(QUANT_TEST_SRC:tests/%.c=$(B)/tests/%)
$(QUANT_TEST_BIN): $(B)/tests/%: tests/%.c tests/test.h $(B)/libgslq.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_) -Itests -Iquant $< $(B)/libgslq.a $(filter-out -lcudart -lcublas -lcurand -lstdc++ -lcudnn,$(LIBS)) -o $@
$(filter-out $(QUANT_TEST_BIN),$(TEST_BIN)) $(GPU_TEST_BIN): $(B)/tests/%: tests/%.c $(wildcard tests/*.h) $(LINK_IN)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_) -Itests -Idarknet -Ilayers -Iquant $(DNINC) $(if $(GPU_CONV),-DGSL_GPU_CONV,) $< $(LINK_IN) \
	  $(TESTLIBS) -o $@

# setup.sh installs Open MPI for the tests, so mpicc is looked for again when the tests start (not at parse time).
test:
	@GPU=$(GPU) BLAS=$(BLAS) SETUP=$(SETUP) scripts/setup.sh test
	@$(MAKE) --no-print-directory -j$(NPROC) bin/darknet test-bins fuzz-bins $$(command -v mpicc >/dev/null && echo $(B)/darknet-mpi)
	@DARKNET_BIN=$(B)/darknet DARKNET_MPI_BIN=$$(command -v mpicc >/dev/null && echo $(B)/darknet-mpi) \
	  DARKNET_TREE=$(DN) DARKNET_SRC_TREE=$(SRC) PYTHON=$(PYTHON) \
	  GSL_TEST_TMP=$(B)/test-tmp tests/run.sh $(TEST_BIN) $(TEST_SH)

# Benchmark programs (scripts/bench/, with their drivers). bench_train and bench_layers link the whole build; the
# -stock twin of bench_train links upstream Darknet as it is (its own gemm, none of our overrides), and -stock-omp
# upstream Darknet built with OPENMP=1 (in build/bench-stock-omp), for side-by-side figures in the same run;
# bench_quant_lib links libgslq alone.
BENCH_BIN := $(B)/bench/bench_train $(B)/bench/bench_train-stock $(B)/bench/bench_layers $(B)/bench/bench_quant_lib \
  $(B)/bench/bench_decode
$(B)/bench/bench_train $(B)/bench/bench_layers $(B)/bench/bench_decode: $(B)/bench/%: scripts/bench/%.c \
  $(wildcard tests/*.h) $(LINK_IN)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_) -Itests -Idarknet -Ilayers -Iquant $(DNINC) $< $(LINK_IN) $(TESTLIBS) -o $@
$(B)/bench/bench_train-stock: scripts/bench/bench_train.c tests/test.h $(OUR_LIBS) $(DN)/libdarknet.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_) -DGSL_BENCH_STOCK -Itests -Idarknet -Ilayers -Iquant $(DNINC) $< $(OUR_LIBS) $(DN)/libdarknet.a \
	  $(TESTLIBS) -o $@
$(B)/bench/bench_quant_lib: scripts/bench/bench_quant_lib.c quant/gslq.h $(B)/libgslq.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_) -Iquant $< $(B)/libgslq.a $(LIBS) -o $@
OMP_DN := build/bench-stock-omp/darknet
$(OMP_DN)/libdarknet.a: $(SRC)/.fetched
	@echo "building stock Darknet with OPENMP=1 in build/bench-stock-omp (log: build/bench-stock-omp/build.log)"
	@rm -rf build/bench-stock-omp && mkdir -p build/bench-stock-omp && cp -a $(SRC) $(OMP_DN)
	@$(MAKE) -C $(OMP_DN) GPU=0 OPENCV=0 OPENMP=1 obj libdarknet.a > build/bench-stock-omp/build.log 2>&1 \
	  || { tail -n 20 build/bench-stock-omp/build.log; exit 1; }
$(B)/bench/bench_train-stock-omp: scripts/bench/bench_train.c tests/test.h $(B)/libgslq.a $(OMP_DN)/libdarknet.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_) -DGSL_BENCH_STOCK -DGSL_BENCH_OMP -Itests -Iquant -I$(OMP_DN)/include -I$(OMP_DN)/src $< \
	  $(B)/libgslq.a $(OMP_DN)/libdarknet.a -fopenmp $(LIBS) -o $@
bench-bins: $(BENCH_BIN)

# The main job: train on Fashion-MNIST, print the search-quality table, plot the curves.
demo:
	@GPU=$(GPU) BLAS=$(BLAS) SETUP=$(SETUP) scripts/setup.sh demo
	@$(MAKE) --no-print-directory -j$(NPROC) bin/darknet
	@scripts/demo.sh $(EPOCHS)

# ---------------------------------------------------------------- fuzzing (libFuzzer, clang)
# tests/fuzz/fuzz_*.c against our readers, compiled with clang under ASan and UBSan (upstream Darknet's library is
# linked as built). `make test` runs each for a few seconds (tests/test_fuzz.sh); `make fuzz FUZZ_TIME=600` longer.
FUZZ_CC    ?= clang
FUZZ_TIME  ?= 300
FUZZ_SAN   := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_FLAGS := -std=c11 -D_GNU_SOURCE -g -O1 $(FUZZ_SAN) -Wno-unused-command-line-argument
FUZZ_SRC   := $(QUANT_SRC) $(LAYERS_SRC) $(CMD_SRC)
FUZZ_OBJ   := $(FUZZ_SRC:%.c=build/fuzz/obj/%.o)
FUZZ_BIN   := $(patsubst tests/fuzz/%.c,build/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))
build/fuzz/obj/%.o: %.c $(wildcard quant/*.h layers/*.h darknet/*.h) build/darknet-cpu/libdarknet.a
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -Idarknet -Ilayers -Iquant -Ibuild/darknet-cpu/include \
	  -Ibuild/darknet-cpu/src -c $< -o $@
build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_OBJ) build/darknet-cpu/libdarknet.a
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer -Itests/fuzz -Idarknet -Ilayers -Iquant -Ibuild/darknet-cpu/include \
	  -Ibuild/darknet-cpu/src $< $(FUZZ_OBJ) build/darknet-cpu/libdarknet.a -lz -lm -pthread -lopenblas -llapacke -o $@
.SECONDARY: $(FUZZ_OBJ) # kept between runs (make would otherwise delete them as intermediates)
fuzz-bins: $(FUZZ_BIN)
fuzz: fuzz-bins
	@FUZZ_TIME=$(FUZZ_TIME) tests/fuzz/run.sh $(FUZZ_BIN)

# libgslq alone: its tests and the `gsl quant` command built against libgslq.a only (no Darknet), and run.
$(B)/gslq: darknet/gsl_quant.c quant/gslq.h $(B)/libgslq.a
	$(CC) $(CFLAGS_) -DGSL_QUANT_STANDALONE -Iquant $< $(B)/libgslq.a \
	  $(filter-out -lcudart -lcublas -lcurand -lstdc++ -lcudnn,$(LIBS)) -o $@
quant-test: $(QUANT_TEST_BIN) $(B)/gslq
	@GSL_TEST_TMP=$(B)/test-tmp-quant GSLQ_BIN=$(B)/gslq PYTHON=$(PYTHON) tests/run.sh $(QUANT_TEST_BIN) \
	  tests/test_quant_faiss.sh

# Needs GPU=1 and a GPU; installs nothing (scripts/gpu-check.sh runs it on a GPU host).
test-gpu: $(GPU_TEST_BIN)
	@test "$(GPU)" = 1 || { echo "make test-gpu needs GPU=1" >&2; exit 2; }
	@GSL_TEST_TMP=$(B)/test-tmp tests/run.sh $(GPU_TEST_BIN)

# Every test program of this configuration, and the MPI binary, built and not run (CI's GPU=1 compile check).
test-bins: $(TEST_BIN) $(GPU_TEST_BIN) $(MPI_BIN)

clean:
	rm -rf build/cpu build/gpu build/cpu-san build/cpu-noblas build/gpu-noblas build/fuzz bin
distclean:
	rm -rf build bin
