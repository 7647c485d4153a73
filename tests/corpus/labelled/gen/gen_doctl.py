import re,sys
from common import *
READ=('list','ls','get','g','describe','show','actions','backups','kernels','neighbors','snapshots','logs','events','options','status','whoami','version','completion','list-regions','list-sizes','list-versions','get-default','list-supported','check','usage','balance','history','list-routes','list-advanced-routes','list-nodes','find','lookup','estimate')
def cls(line):
    w=words(line); p=[a for a in w[1:] if not a.startswith('-')]
    ws=set(w)
    j=' '.join(p[:4])
    last=None
    verbs=[a for a in p[:5]]
    if any(x in ('connection','kubeconfig') for x in verbs):
        if 'kubeconfig' in verbs and 'show' in verbs: return 'credential'
        if 'kubeconfig' in verbs and 'save' in verbs: return 'credential'
        if 'kubeconfig' in verbs: return 'local'
        return 'credential'
    if 'serverless' in verbs and ('invoke' in verbs or 'deploy' in verbs or 'watch' in verbs): return 'code' if 'invoke' in verbs else 'write'
    if ('inference' in verbs) and ('list' in verbs or 'get' in verbs): return 'read'
    if 'flush' in verbs: return 'write'
    if 'firewalls' in verbs and 'remove' in verbs: return 'write'
    if 'inference' in verbs: return 'write'
    if ('gradient' in verbs and 'agent' in verbs and 'invoke' in verbs): return 'code'
    if 'ssh' in verbs or 'console' in verbs and 'apps' in verbs: return 'code'
    if 'keys' in verbs and 'create' in verbs or 'key' in verbs and 'create' in verbs or 'openai-key' in verbs and ('create' in verbs or 'update' in verbs) or 'reset-auth' in verbs or 'reset' in verbs and 'user' in verbs or 'docker-config' in verbs or 'login' in verbs and 'registry' in verbs: return 'credential'
    if 'auth' in verbs:
        if 'init' in verbs: return 'credential'
        return 'local' if ('switch' in verbs or 'remove' in verbs) else 'read'
    for v in verbs[1:]:
        if v in ('delete','d','rm','remove','purge','flush','delete-node','delete-selective','delete-nodes','garbage-collection','delete-manifest','delete-tag','destroy','rm-node','reset-password'):
            if v=='garbage-collection' and ('get' in verbs or 'list' in verbs or 'get-active' in verbs): return 'read'
            if v=='garbage-collection' and 'cancel' in verbs: return 'write'
            if v=='remove' and 'firewall' in verbs: return 'write'
            if v=='remove' and ('tag' in verbs or 'droplets' in verbs): return 'write'
            return 'destroy'
        if v in ('restore','rebuild','resize') and 'droplet-action' in verbs and v=='rebuild': return 'destroy'
        if v in READ or v.startswith(('list','get')): return 'read'
    if 'run' in verbs and 'apps' in verbs: return 'code'
    if 'droplet-action' in verbs and 'rebuild' in verbs: return 'destroy'
    if 'restore' in verbs: return 'destroy'
    return 'write'
rows=[]
for l in open('src/doctl_all.txt'):
    rel,cmd=l.rstrip('\n').split('\t',1)
    cmd=re.split(r'\.\s+[A-Z]',cmd)[0]
    c=clean(cmd.strip().rstrip('`,.').strip())
    if c and words(c)[-1] in ('--agent-id','--message','--prompt','--input','--volume-list','--parent-agent-id'): continue
    if not c: continue
    k=cls(c)
    rows.append((k,c,f'doctl source (digitalocean/doctl v1.166.0): {rel} Example'))
with open('out/doctl.tsv','w') as f:
    for r in rows: f.write('\t'.join(r)+'\n')
from collections import Counter
print(Counter(r[0] for r in rows),file=sys.stderr)
