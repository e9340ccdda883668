int i = blockIdx.x * blockDim.x + threadIdx.x;
if (i >= {{n}}) return;
{{base}}float acc = {{init}};
for (int r = 0; r < {{count}}; r++) {
{{offset}}float v = p1[off];
{{step}}
}
p0[i] = {{fin}};
