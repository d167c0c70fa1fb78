# lit configuration of Kiln's compiler tests (see test/README.md).
import os
import lit.formats

config.name = "Kiln"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".mlir", ".kiln", ".test"]
config.excludes = ["lit.cfg.py", "lit.site.cfg.py", "Inputs", "fixtures", "fuzz", "unit", "CMakeLists.txt", "README.md"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.kiln_obj_root, "test")

# Kiln's tools first, then LLVM's FileCheck, not, count, split-file (only the
# -14 suffixed names are on Debian's PATH).
config.environment["PATH"] = os.pathsep.join(
    [config.kiln_tools_dir, config.llvm_tools_dir, config.environment.get("PATH", os.environ["PATH"])])
config.substitutions.append(("%models", os.path.join(config.kiln_src_root, "models")))
config.substitutions.append(("%fixtures", os.path.join(config.kiln_src_root, "test", "fixtures")))
config.substitutions.append(("%python", "/usr/bin/python3"))
config.substitutions.append(("%kiln_src", config.kiln_src_root))
config.substitutions.append(("%kiln_obj", config.kiln_obj_root))
