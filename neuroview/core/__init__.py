"""The NeuroView networks themselves: quantizers, site discovery, the CNN and RNN wrappers and
their explanations. Plain ``nn.Module``s: imports torch, einops and the standard library only,
never Lightning, matplotlib or another neuroview subpackage.
"""
