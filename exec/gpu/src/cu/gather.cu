int i = blockIdx.x * blockDim.x + threadIdx.x;
if (i >= {{n}}) return;
{{find}}{{pick}}
