import re,sys
from common import *
def strip_global(w):
    # drop global flags to find verb
    out=[];i=1
    vals={'-n','--namespace','--context','--kubeconfig','--cluster','--user','-s','--server','--as','--token','-l','-o','--selector','-f','-c','--field-selector'}
    pos=[]
    while i<len(w):
        a=w[i]
        if a=='--': pos.append(('--',i)); break
        if a.startswith('-'):
            if a in vals: i+=2; continue
            i+=1; continue
        pos.append((a,i)); i+=1
    return [p for p,_ in pos]
def dry(w):
    for a in w:
        if a in ('--dry-run','--dry-run=client','--dry-run=server'): return True
    return False
def cls(line):
    w=words(line); p=strip_global(w); v=p[0] if p else ''
    sub=p[1] if len(p)>1 else ''
    ow=[a for a in w if a.startswith('-o') or a.startswith('--output')]
    if v in ('get',):
        if '--raw' in ' '.join(w): return 'read'
        if sub.startswith('secret') and (ow or '-o' in w): return 'credential'
        return 'read'
    if v in ('describe','logs','explain','api-resources','api-versions','cluster-info','top','version','diff','events','wait','options','completion','kustomize','plugin','controls'): return 'read'
    if v=='auth': return 'read' if sub in ('can-i','whoami') else 'write'
    if v=='config':
        if sub=='view': return 'credential' if '--raw' in w else 'read'
        if sub in ('get-contexts','current-context','get-clusters','get-users'): return 'read'
        if sub=='set-credentials': return 'credential' if any('token' in a or 'password' in a or 'client-key' in a or 'auth-provider-arg' in a for a in w) else 'local'
        return 'local'
    if v=='kuberc': return 'local' if sub!='view' else 'read'
    if dry(w): return 'read'
    if v=='create':
        if sub in ('secret','token'): return 'credential'
        if '--raw' in w: return 'code'
        return 'write'
    if v in ('apply',):
        if '--prune' in w: return 'destroy'
        if sub in ('view-last-applied',): return 'read'
        return 'write'
    if v=='replace':
        if '--force' in w: return 'destroy'
        if '--raw' in w: return 'code'
        return 'write'
    if v=='delete':
        if '--raw' in w: return 'code'
        return 'destroy'
    if v=='drain':
        return 'destroy' if any(a.startswith(('--delete-emptydir-data','--delete-local-data')) for a in w) else 'write'
    if v in ('exec','attach','port-forward','proxy','debug','shell'): return 'code'
    if v=='cp':
        src=[a for a in p[1:]]
        return 'read' if src and ':' in src[0] else 'code'
    if v=='run':
        return 'code' if any(a in ('-i','-t','-it','-ti','--stdin','--tty','--attach','--rm') or a.startswith(('--attach','--stdin','--tty')) for a in w) or '--' in w else 'write'
    if v in ('set','rollout','patch','label','annotate','taint','scale','autoscale','expose','edit','cordon','uncordon','certificate'):
        if v=='rollout' and sub in ('status','history'): return 'read'
        return 'write'
    return None
rows=[]
commit='dee3483a3d6a'
for l in open('src/kubectl.txt'):
    rel,cmd=l.rstrip('\n').split('\t',1)
    c=clean(cmd)
    if not c: continue
    k=cls(c)
    if not k: print('??',c,file=sys.stderr); continue
    rows.append((k,c,f'kubectl source (kubernetes/kubectl@{commit}): {rel} Example'))
with open('out/kubectl.tsv','w') as f:
    for r in rows: f.write('\t'.join(r)+'\n')
from collections import Counter
print(Counter(r[0] for r in rows),file=sys.stderr)
