"""benchmarks/compiled_kernels.py counts kernel launches in a compiled graph's wrapper, not definitions
nor loop nests (no compile here: the counting rule on wrapper code as Inductor writes it)."""

from __future__ import annotations

WRAPPER = '''
cpp_fused_convolution_0 = async_compile.cpp_pybinding(['const float*', 'float*'], r\'\'\'
extern "C" void kernel(const float* in_ptr0, float* out_ptr0) { for (int i = 0; i < 8; i++) {} for (int j = 0; j < 8; j++) {} }
\'\'\')

def call(args):
    arg0_1, = args
    buf0 = empty_strided_cpu((2, 3, 16, 16), (768, 1, 48, 3), torch.float32)
    cpp_fused_convolution_0(arg0_1, buf0)
    buf1 = extern_kernels.convolution(buf0, arg1_1, None, stride=(1, 1))
    extern_kernels.addmm(arg2_1, buf1, arg3_1, alpha=1, beta=1, out=buf2)
    buf3 = torch.ops.aten.native_dropout.default(buf2, 0.5, True)
    return (buf3, )
'''


def test_launches_are_counted_once_each_and_definitions_never(benchmark_script):
    compiled_kernels = benchmark_script("compiled_kernels")
    body = WRAPPER.split("def call(", 1)[1]
    found = compiled_kernels.CALL.findall(body)
    assert found == ["cpp_fused_convolution_0", "extern_kernels.convolution", "extern_kernels.addmm",
                     "torch.ops.aten.native_dropout.default"]
    assert compiled_kernels.CALL.findall(WRAPPER.split("def call(", 1)[0]) == []  # the definition is no launch
